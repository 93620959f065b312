"""A connection's History tab: its runs, and one run's files, rejects, validation results and
results files (the drill-down). Drawn by app_pages/connection_detail.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from app_pages import _ui
from app_pages.connections import run_message
from connectbatch.escaping import markdown_text, visible
from connectbatch.models import Connection, Direction, Export, MailState, ReviewState, Run, RunStatus
from connectbatch.pipeline import outbox, review
from connectbatch.services import Services
from connectbatch.store.events import ConnectionEvent
from connectbatch.store.outbox import Queued

REJECTS_SHOWN = 1000
EXPORTS_SHOWN = 100


# Counts with thousands separators, as the run's tiles show them ("1,488"): the grid showed
# "1488".
COUNTS = {
    name: st.column_config.NumberColumn(format="localized")
    for name in ("Files", "Rows accepted", "Rejected", "Duplicates", "Rows rejected")
}


def runs_table(runs: list[Run]) -> list[dict[str, Any]]:
    return [
        {
            "Run": r.id,
            "Start": _ui.when(r.started_at),
            "End": _ui.when(r.finished_at),
            "Status": str(r.status),
            "Review": r.review or "",
            "Trigger": r.trigger,
            "Files": r.files_seen,
            "Rows accepted": r.rows_accepted,
            "Rejected": r.rows_rejected,
            "Duplicates": r.rows_duplicate,
            "Reason": visible(r.reason or ""),  # quotes file names as the partner sent them
        }
        for r in runs
    ]


def _status_colour(value: str) -> str:
    colour = {
        "Completed": "#1b873f", "Failed": "#d1242f", "In Progress": "#0969da", "Needs review": "#9a6700",
    }.get(value)  # fmt: skip
    return f"color: {colour}; font-weight: 600" if colour else ""


def history_tab(services: Services, c: Connection) -> None:
    events_section(services, c)
    if c.direction is Direction.OUTBOUND:  # its history is its exports: it has no runs
        exports_section(services, c)
        return
    ok, runs = _ui.safely("Loading the history", lambda: services.runs(c.id))
    if not ok or runs is None:
        return
    if not runs:
        # Run now is on this page, above the tabs (it said "on the Connections list").
        st.info("No runs yet. " + ("Use Run now above." if _ui.is_pull(c) else "Files arrive by themselves."))
        return
    import pandas as pd

    frame = pd.DataFrame(runs_table(runs))
    st.dataframe(
        frame.style.map(_status_colour, subset=["Status"]),
        hide_index=True,
        key=f"history_table_{c.id}",
        column_config=COUNTS | {"Reason": st.column_config.TextColumn(width="large")},
    )
    by_id = {r.id: r for r in runs}
    run_id = st.selectbox(
        "Run details",
        list(by_id),
        format_func=lambda i: (
            f"Run {i} · {_ui.when(by_id[i].started_at)} · {by_id[i].status}"
            + (f" ({by_id[i].review})" if by_id[i].review else "")
        ),
        key=f"history_run_{c.id}",
    )
    if run_id is not None:
        retried_by = next((r.id for r in runs if r.retry_of == run_id), None)
        run_details(services, c, by_id[run_id], retried_by)


def retry_button(services: Services, c: Connection, run: Run, retried_by: int | None) -> None:
    """A failed run's files again from their staged copies (a pull with none: pulls again),
    as `connectbatch retry` does; the new run is shown with its outcome."""
    if run.status is not RunStatus.FAILED or run.review:  # a discarded batch is not retried
        return
    if retried_by is not None:
        st.caption(f"Retried as run {retried_by}.")
        return
    if not st.button(
        f"Retry run {run.id}", key=f"retry_{run.id}", icon=":material/replay:",
        help="Runs the files this run did not finish again, from the copies staged when they arrived.",
    ):  # fmt: skip
        return
    ok, again = _ui.safely("Retry", lambda: services.retry(run.id))
    if ok and again is not None:
        _ui.flash(*run_message(c, again))
        st.session_state.pop(f"history_run_{c.id}", None)  # the list opens on the new run
        st.rerun()


def run_details(services: Services, c: Connection, run: Run, retried_by: int | None = None) -> None:
    st.subheader(f"Run {run.id}")
    st.markdown(
        f"{_ui.badge(str(run.status))}"
        + (f" {_ui.badge(run.review)}" if run.review else "")
        + f" started {_ui.when(run.started_at)} by {run.trigger}, ended {_ui.when(run.finished_at)}"
    )
    if run.status is RunStatus.FAILED and run.reason:  # reasons quote file names and servers
        st.error(markdown_text(run.reason))
    retry_button(services, c, run, retried_by)
    if run.status is RunStatus.NEEDS_REVIEW and run.reason:
        st.warning(f"Held for review: {markdown_text(run.reason)}")
    if run.status is RunStatus.COMPLETED and run.reason:  # a remark: columns not read, a pinned key
        st.info(markdown_text(run.reason))
    if run.review == ReviewState.QUARANTINED:
        _ui.review_link(run.id, f"Needs review: open run {run.id} on the Validation page")
    if run.review_note:
        st.caption(f"Review note: {markdown_text(run.review_note)}")
    numbers = st.columns(7)
    for column, (label, n) in zip(
        numbers,
        [
            ("Files seen", run.files_seen),
            ("Files loaded", run.files_loaded),
            ("Rows accepted", run.rows_accepted),
            ("Rows rejected", run.rows_rejected),
            ("Duplicates", run.rows_duplicate),
            ("Actions created", run.actions_created),
            # existing actions a modifications file or a corrected record changed
            ("Actions changed", run.actions_changed),
        ],
        strict=True,
    ):
        column.metric(label, f"{n:,}")

    ok, files = _ui.safely("Loading the run's files", lambda: services.run_files(run.id))
    files = files or []
    names = {f.id: f.name for f in files}
    st.markdown("**Files**")
    if files:
        st.dataframe(
            _ui.shown_rows(
                [
                    {
                        "File": f.name,
                        "State": f.state,
                        "Source": f.source,
                        "Size": _ui.size(f.size),
                        "Rows accepted": f.rows_accepted,
                        "Rows rejected": f.rows_rejected,
                        "Message": f.message or "",
                        "Received": _ui.when(f.received_at),
                        "SHA-256": f.sha256[:12],
                    }
                    for f in files
                ]
            ),
            hide_index=True,
            key=f"run_files_{run.id}",
            column_config=COUNTS,
        )
    elif ok:
        st.caption("This run saw no file.")

    rejects_section(services, run, names)
    validation_section(services, run, names)
    results_section(services, c, run)


def rejects_section(services: Services, run: Run, names: dict[int, str]) -> None:
    ok, count = _ui.safely("Counting rejects", lambda: services.count_rejects(run.id))
    if not ok or not count:
        return
    st.markdown(f"**Rejects** ({count:,})")
    ok, rejects = _ui.safely("Loading rejects", lambda: services.rejects(run.id, REJECTS_SHOWN))
    if not ok or rejects is None:
        return
    if count > REJECTS_SHOWN:
        st.caption(f"The first {REJECTS_SHOWN:,}; the download has all {count:,}.")
    st.dataframe(_ui.shown_rows(_ui.rejects_table(rejects, names)), hide_index=True, key=f"rejects_{run.id}")
    st.download_button(
        "Download rejects (CSV)",
        data=lambda: _ui.rejects_csv(services.rejects(run.id), names),
        file_name=f"run{run.id}-rejects.csv",
        mime="text/csv",
        key="rejects_download",
        on_click="ignore",
        icon=":material/download:",
    )


def validation_section(services: Services, run: Run, names: dict[int, str]) -> None:
    ok, reports = _ui.safely("Loading validation results", lambda: services.validation(run.id))
    if not ok or not reports:
        return
    st.markdown("**Validation**")
    for file_id, report in reports:
        kind, sentence = _ui.verdict(report)
        with st.expander(
            markdown_text(f"{names.get(file_id, f'File {file_id}')}: {sentence[:120]}"),
            expanded=kind != "success",
        ):
            {"error": st.error, "warning": st.warning}.get(kind, st.success)(markdown_text(sentence))
            st.dataframe(
                _ui.shown_rows(review.outcome_rows(report)),  # the samples quote partner cells
                hide_index=True,
                key=f"validation_{run.id}_{file_id}",
                column_config={"Expectation": st.column_config.TextColumn(width="large")},
            )


def mail_line(mail: Queued) -> str:
    """Where a results e-mail stands, in a sentence (the address and the server's reply are
    outside text: escape before showing)."""
    to = f"to {mail.recipient}"
    if mail.state is MailState.SENT:
        return f"Results e-mailed {to} {_ui.when(mail.sent_at)}."
    if mail.state is MailState.FAILED:
        return f"Results e-mail {to} not delivered after {outbox.tries(mail.attempts)}: {mail.last_error}."
    if mail.last_error:
        return (
            f"Results e-mail {to} waiting: try {mail.attempts} failed ({mail.last_error}); "
            f"next try {_ui.when(mail.next_attempt_at)}."
        )
    return f"Results e-mail {to} waiting to be sent."


def results_section(services: Services, c: Connection, run: Run) -> None:
    _found, paths = _ui.safely("Listing results files", lambda: services.results_files(c.id))
    mine = [p for p in paths or [] if p.name.startswith(f"run{run.id}-")]
    if not mine:
        return
    st.markdown("**Results files**")
    _ok, mails = _ui.safely("Loading the results e-mails", lambda: services.results_mail(run.id))
    for mail in mails or []:
        st.caption(markdown_text(mail_line(mail)))
    with st.container(horizontal=True):
        for i, path in enumerate(mine):
            st.download_button(
                results_label(path.name),
                data=_reader(path),
                file_name=path.name,
                mime="application/json" if path.suffix == ".json" else "text/csv",
                key=f"results_{i}",
                on_click="ignore",
                icon=":material/download:",
            )


def results_label(file_name: str) -> str:
    """'run3-file4-calls.csv.results.csv' -> 'Results of calls.csv', the partner's name
    escaped: a button's label is Markdown (`__daily__.csv` read "_daily_.csv" in italics)."""
    original = file_name.split("-", 2)[-1]
    for suffix, what in ((".results.csv", "Results"), (".summary.json", "Summary")):
        if original.endswith(suffix):
            return f"{what} of {markdown_text(original.removesuffix(suffix))}"
    return markdown_text(original)


def _reader(path: Path) -> Any:
    return lambda: path.read_bytes()


EVENT_KINDS = {"mail_unmatched": "Mail with nothing taken", "trigger_skipped": "Scheduled trigger skipped"}
EVENT_KINDS["mail_too_large"] = "Mail too large to download"  # e-mail pull (imap/size.py)
EVENT_KINDS["push_unrouted"] = "Upload with a shared login not taken"  # credentials reuse (gateway)
EVENT_KINDS["push_unmatched"] = "Upload not matching the file pattern"  # gateway
EVENT_KINDS["push_over_quota"] = "Upload refused: push folder quota"  # gateway (push/quota.py)
EVENT_KINDS["mail_failed"] = "E-mail not delivered"  # results or an alert (pipeline/outbox.py)
EVENT_KINDS["delivery_alert"] = "Delivery alert raised"  # expected delivery (issue 12)
EVENT_KINDS["delivery_alert_cleared"] = "Delivery alert cleared"
EVENT_KINDS["export_failed"] = "Export failed"  # an outbound connection's export (services.export_now)
EVENT_KINDS["results_not_written"] = "Results file not written"  # a full disk after the load (commit.py)


def events_table(events: list[ConnectionEvent]) -> list[dict[str, Any]]:
    """The connection's history besides runs; the message holds partner text (file names,
    subjects, addresses), so it is escaped."""
    return [
        {
            "When": _ui.when(e.last_at),
            "Event": EVENT_KINDS.get(e.kind, e.kind),
            "Times": e.count,
            "Sender told": "yes" if e.answered else "",
            "What": visible(e.message),
        }
        for e in events
    ]


def exports_table(ledger: list[Export]) -> list[dict[str, Any]]:
    return [
        {
            "When": _ui.when(e.created_at),
            "Trigger": e.trigger,
            "File": visible(e.file_name or "—"),  # named after the connection's own pattern
            "Rows": e.rows,
            "New rows": e.new_rows,
            "Status changes": e.changes,
        }
        for e in ledger
    ]


def exports_section(services: Services, c: Connection) -> None:
    """An outbound connection's history: the files it wrote for the partner to collect (the
    export ledger). The runs table is of inbound files only, so after an export the tab said
    "No runs yet. Files arrive by themselves." under a Completed status and a Last Active."""
    ok, ledger = _ui.safely("Loading the exports", lambda: services.exports(c.id, limit=EXPORTS_SHOWN))
    if not ok or ledger is None:
        return
    if not ledger:
        st.info(
            "No exports yet. Use Export now above" + (", or wait for the schedule." if c.schedule else ".")
        )
        return
    st.markdown(f"**Exports** (newest first, the last {EXPORTS_SHOWN:,} at most)")
    st.dataframe(
        exports_table(ledger),
        hide_index=True,
        key=f"history_exports_{c.id}",
        column_config={n: st.column_config.NumberColumn(format="localized")
                       for n in ("Rows", "New rows", "Status changes")},
    )  # fmt: skip


def events_section(services: Services, c: Connection) -> None:
    """Decisions with no run of their own (a mail that brought nothing, a skipped trigger)."""
    ok, events = _ui.safely("Loading the connection's events", lambda: services.connection_events(c.id))
    if not ok or not events:
        return
    import pandas as pd

    st.markdown("**Events** (besides runs)")
    st.dataframe(
        pd.DataFrame(events_table(events)),
        hide_index=True,
        key=f"history_events_{c.id}",
        column_config={"What": st.column_config.TextColumn(width="large")},
    )
