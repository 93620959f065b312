"""Validation: the data-quality reviewer's screen.

The review queue (quarantined runs first, then critical failures, warnings, failures before
validation, clean runs), and for the chosen run: every expectation in words, the rejected
rows with a CSV download, the results files, and release or discard of a quarantined batch
with a note. Below, the reject rate per connection over time. The file format itself and a
dry run of a sample file live on the "File format & dry run" page.

Streamlit runs a page with `__name__ == "__main__"`; the UI is built only then.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from app_pages import _partner_filter, _trend, _ui
from connectbatch import triage, webapp
from connectbatch.errors import ConnectBatchError
from connectbatch.escaping import markdown_text, visible
from connectbatch.models import FileRecord, RejectRow, Run, RunStatus
from connectbatch.pipeline import review
from connectbatch.pipeline.review import RunReview
from connectbatch.pipeline.validation import ValidationReport
from connectbatch.services import Services

log = logging.getLogger(__name__)

FILE_FORMAT_PAGE = "app_pages/parse_preview.py"
REJECTS_SHOWN = 1000
RUN_KEY = "validation_run"
NOTE_KEY, NOTE_RUN_KEY = "review_note", "review_note_run"  # the note, and the run it is for
PENDING_KEY = "review_pending"  # (action, run id) waiting for the reviewer's confirmation
OUTCOME_KEY = "review_outcome"  # (run id, kind, message) of the last decision
_DONE = {"release": "released", "discard": "discarded"}  # "discard" + "d" read "discardd"
_plain = markdown_text  # text from a file or a person, shown literally (a `$` must not start LaTeX)


# ------------------------------------------------------------------ review decisions
# Button callbacks: they run before the page re-renders, so the page shows the new state.


def _request(action: str, run_id: int) -> None:
    note = str(st.session_state.get(NOTE_KEY) or "").strip()
    if not note:
        st.session_state[OUTCOME_KEY] = (
            run_id,
            "warning",
            f"Write a note before you {action} a batch: it is kept with the run, with your name.",
        )
        return
    st.session_state[PENDING_KEY] = (action, run_id)


def _cancel() -> None:
    st.session_state.pop(PENDING_KEY, None)


def _decide(action: str, run_id: int) -> None:
    st.session_state.pop(PENDING_KEY, None)
    note = str(st.session_state.get(NOTE_KEY) or "").strip()
    try:
        svc = webapp.services()  # bound to the logged-in user, whose name is kept with the run
        actor = svc.actor()
        if action == "release":
            done = svc.release(run_id, note)
            message = (
                f"Run {run_id} released by {actor}: {done.rows_accepted:,} rows loaded, "
                f"{done.actions_created:,} pending actions created."
            )
        else:
            svc.discard(run_id, note)
            message = f"Run {run_id} discarded by {actor}: the held rows were dropped, nothing was loaded."
    except ConnectBatchError as exc:
        st.session_state[OUTCOME_KEY] = (run_id, "error", f"Run {run_id} was not {_DONE[action]}: {exc}")
        return
    except Exception as exc:  # a bug: a message here, the traceback in the log
        log.exception("%s of run %s failed", action, run_id)
        st.session_state[OUTCOME_KEY] = (
            run_id,
            "error",
            f"Run {run_id} was not {_DONE[action]}: unexpected {type(exc).__name__}: {exc}",
        )
        return
    st.session_state[OUTCOME_KEY] = (run_id, "success", message)
    st.session_state[NOTE_KEY] = ""


def _show_outcome(run_id: int) -> None:
    found = st.session_state.get(OUTCOME_KEY)
    if not found or found[0] != run_id:
        return
    del st.session_state[OUTCOME_KEY]
    _, kind, message = found
    {"success": st.success, "warning": st.warning}.get(kind, st.error)(_plain(message))


def _review_panel(item: RunReview) -> None:
    run = item.run
    with st.container(border=True):
        st.markdown("**Review this quarantined batch**")
        st.caption(
            f"{item.rows_accepted:,} rows are held back. *Release* loads them and creates their pending "
            "actions (rows already loaded or repeated, negative amounts and impossible dates stay out); "
            "*discard* drops them all. The note and your name are kept with the run."
        )
        if st.session_state.get(NOTE_RUN_KEY) != run.id:  # a note is about one run: never another's
            st.session_state[NOTE_RUN_KEY], st.session_state[NOTE_KEY] = run.id, ""
        st.text_area("Note", key=NOTE_KEY, placeholder="Why you release or discard this batch")
        pending = st.session_state.get(PENDING_KEY)
        left, right = st.columns(2)
        if pending and pending[1] == run.id:
            action = pending[0]
            if action == "release":
                st.warning(
                    f"Release run {run.id}? Up to {item.rows_accepted:,} rows of {_plain(item.connection)} "
                    "will load (rows already loaded stay out), with their actions. This cannot be undone."
                )
            else:
                st.warning(
                    f"Discard run {run.id}? Its {item.rows_accepted:,} held rows will be dropped. "
                    "This cannot be undone."
                )
            left.button(
                f"Yes, {action}",
                key="review_confirm",
                type="primary",
                on_click=_decide,
                args=(action, run.id),
            )
            right.button("Cancel", key="review_cancel", on_click=_cancel)
        else:
            left.button("Release…", key="review_release", on_click=_request, args=("release", run.id))
            right.button("Discard…", key="review_discard", on_click=_request, args=("discard", run.id))


# ------------------------------------------------------------------ the chosen run


# Counts with thousands separators, as everywhere else on the page ("1,488 rows"): the grid
# showed a run's 1,488 accepted rows as "1488".
_ROWS = ("Rows accepted", "Rows rejected")
COUNTS = {n: st.column_config.NumberColumn(format="localized") for n in ("Critical", "Warnings", *_ROWS)}


def queue_rows(queue: list[RunReview], now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The queue's table; a held batch shows its lock deadline and the time left before it."""
    now = now or dt.datetime.now(dt.UTC)
    return [
        {
            "Run": q.run.id,
            "Connection": visible(q.connection),
            "Partner": visible(q.partner or ""),
            "Started": q.run.started_at,
            "Status": str(q.run.status),
            "Review": q.review_state.capitalize(),
            "Validation": q.verdict,
            "Critical": q.critical,
            "Warnings": q.warnings,
            _ROWS[0]: q.rows_accepted,  # a held batch's: held (the run's own metric says so)
            _ROWS[1]: q.rows_rejected,
            "Lock deadline": q.lock_deadline,
            "Time left": triage.time_left_text(q.lock_deadline, now) if q.lock_deadline else "",
        }
        for q in queue
    ]


def run_label(item: RunReview) -> str:
    started = item.run.started_at.strftime("%Y-%m-%d %H:%M")
    return f"Run {item.run.id} · {visible(item.connection)} · {started} · {item.verdict}"


def rejects_csv(svc: Services, run_id: int, names: dict[int, str]) -> bytes:
    """Every reject of the run (not only the rows shown) as CSV."""
    return _ui.rejects_csv(svc.rejects(run_id), names)


def _show_report(file_id: int, name: str, report: ValidationReport) -> None:
    st.markdown(f"**Expectations: {_plain(name)}**")
    headline = review.headline(report)
    if not report.success:
        st.warning(headline, icon=":material/block:")
    elif report.warnings:
        st.warning(headline)
    else:
        st.success(headline)
    st.dataframe(
        _ui.shown_rows(review.outcome_rows(report)),  # the samples quote partner cells
        hide_index=True,
        column_config={
            "Expectation": st.column_config.TextColumn(width="large"),
            "Observed": st.column_config.TextColumn(width="medium"),
        },
    )
    st.caption(review.conditions(report))
    # Drawn only when asked for: a collapsed expander still drew (and highlighted) the whole
    # result in the browser, in every view of the page (issue 13: screens ready in a second)
    if st.toggle("Raw validation result (JSON)", key=f"raw_result_{file_id}"):
        st.code(json.dumps(report.raw, indent=2, default=str), language="json", height=400)


@dataclass(frozen=True)
class RunDetails:
    """What the page shows of one run below its header: five reads, made once per run state."""

    files: list[FileRecord]
    reports: list[tuple[int, ValidationReport]]
    rejects_total: int
    rejects_shown: list[RejectRow]
    results_files: list[Path]


def _read_details(svc: Services, run_id: int) -> RunDetails:
    total = svc.count_rejects(run_id)
    return RunDetails(
        files=svc.run_files(run_id), reports=list(svc.validation(run_id)), rejects_total=total,
        rejects_shown=svc.rejects(run_id, limit=REJECTS_SHOWN) if total else [],
        results_files=svc.run_results_files(run_id),
    )  # fmt: skip


@st.cache_data(show_spinner=False, max_entries=64)
def _cached_details(_svc: Services, home: str, role: str, run: Run) -> tuple[Any, ...]:
    """Shared by every session; the key holds the whole run (status, review, counts), which a
    release, a discard or a retry changes, so a changed run is read again. A tuple: this page
    runs as __main__, whose classes the cache cannot pickle."""
    d = _read_details(_svc, run.id)
    return d.files, d.reports, d.rejects_total, d.rejects_shown, d.results_files


def run_details(svc: Services, run: Run) -> RunDetails:
    """The run's details; a run still in progress is read afresh on every view."""
    if run.status is RunStatus.IN_PROGRESS:
        return _read_details(svc, run.id)
    role = str(svc.user.role) if svc.user is not None else ""
    return RunDetails(*_cached_details(svc, str(svc.settings.home), role, run))


def _show_rejects(svc: Services, run: Run, names: dict[int, str], details: RunDetails) -> None:
    st.markdown("**Rejected rows**")
    total = details.rejects_total
    if not total:
        st.caption("The parser rejected no rows in this run.")
        return
    shown = details.rejects_shown
    if total > len(shown):
        st.caption(f"The first {len(shown):,} of {total:,}; the download has them all.")
    several = len(names) > 1
    st.dataframe(
        _ui.shown_rows(
            [
                {
                    "Line": r.line,
                    "Key": r.shown_key,  # the row's key as far as it was read: which record it was
                    "Column": r.column,
                    "Value": r.value,
                    "Reason": r.reason,
                    **({"File": names.get(r.file_id, str(r.file_id))} if several else {}),
                }
                for r in shown
            ]
        ),
        hide_index=True,
    )
    st.download_button(
        f"Download {total:,} rejects (CSV)",
        data=lambda: rejects_csv(svc, run.id, names),
        file_name=f"run{run.id}-rejects.csv",
        mime="text/csv",
        key="rejects_download",
        on_click="ignore",
    )


def _read(path: Path) -> bytes:
    """A results file's bytes at download time (empty if it was cleaned up meanwhile)."""
    return path.read_bytes() if path.exists() else b""


def _show_results_files(paths: list[Path]) -> None:
    if not paths:
        return
    st.markdown("**Results files** (what the sender receives)")
    for path in paths:
        st.download_button(
            f"Download {_plain(path.name)}",  # a label is Markdown; the name is the partner's
            data=functools.partial(_read, path),
            file_name=path.name,
            mime="application/json" if path.suffix == ".json" else "text/csv",
            key=f"results_{path.name}",
            on_click="ignore",
        )


def _files_table(files: list[FileRecord]) -> list[dict[str, Any]]:
    return _ui.shown_rows(
        [
            {
                "File": f.name,
                "Source": f.source,
                "State": f.state,
                "Rows accepted": f.rows_accepted,
                "Rows rejected": f.rows_rejected,
                "Message": f.message or "",
            }
            for f in files
        ]
    )


_VALUE = '.st-key-run_metrics [data-testid="stMetricValue"]'
WORD_METRICS_STYLE = (
    f"<style>{_VALUE}, {_VALUE} * {{white-space: normal; overflow: visible; text-overflow: clip;}}</style>"
)


def _show_run(svc: Services, item: RunReview) -> None:
    run = item.run
    st.subheader(f"Run {run.id}: {_plain(item.connection)}")
    _show_outcome(run.id)
    # Words, not numbers, in the first two: wider columns, and a value that still does not
    # fit wraps. In four equal columns "Needs review" was cut to "Needs revi…" at 1280 px.
    st.html(WORD_METRICS_STYLE)
    cols = st.container(key="run_metrics").columns([1.4, 1.4, 1, 1])
    cols[0].metric("Status", str(run.status))
    cols[1].metric("Review", item.review_state.capitalize() or "None needed")
    held = run.review == "quarantined"  # not accepted yet: the history says 0 (app audit)
    cols[2].metric("Rows held" if held else "Rows accepted", f"{item.rows_accepted:,}")
    cols[3].metric("Rows rejected", f"{item.rows_rejected:,}")
    if run.rows_duplicate:  # left out, not rejected: their results lines say why
        st.caption(f"{run.rows_duplicate:,} rows left out as duplicates (already loaded, or repeated).")
    if run.reason:
        st.caption(f"Reason: {_plain(run.reason)}")
    if run.review_note:
        st.caption(f"Review note: {_plain(run.review_note)}")
    if run.review == "quarantined":
        _review_panel(item)

    details = run_details(svc, run)
    files = details.files
    names = {f.id: f.name for f in files}
    if files:
        st.markdown("**Files**")
        st.dataframe(_files_table(files), hide_index=True, column_config=COUNTS)
    reports = details.reports
    for file_id, report in reports:
        _show_report(file_id, names.get(file_id, f"file {file_id}"), report)
    if not reports:
        st.info("Nothing in this run reached validation (see the files' messages above).")
    _show_rejects(svc, run, names, details)
    _show_results_files(details.results_files)


# ------------------------------------------------------------------ the page


TREND_RUNS = 1000  # the trend's points: the last runs that read rows


def _show_trend(svc: Services, partners: tuple[int, ...]) -> None:
    st.subheader("Reject rate per connection")
    rates = svc.reject_rates(partners, limit=TREND_RUNS)
    if not rates:
        st.caption("No rows received yet.")
        return
    st.html(_trend.reject_rate_html(rates))  # drawn on the server: no chart library to load
    last = f"the last {TREND_RUNS:,} runs" if len(rates) == TREND_RUNS else "every run"
    st.caption(f"Share of a run's rows the parser rejected, per run, by connection ({last}; times in UTC).")


def _show_page() -> None:
    svc = webapp.services()
    partners = _partner_filter.choose(svc.partner_choices(), "validation_partners")
    queue = svc.review_queue(partners=partners)
    if not queue and partners:
        st.info("The chosen partners' connections have no runs yet.")
        return
    if not queue:
        st.info("No runs yet: files appear here once a connection receives them.")
        _show_trend(svc, partners)
        return

    cols = st.columns(4)
    cols[0].metric("Awaiting review", sum(q.review_state == "quarantined" for q in queue))
    cols[1].metric("Runs with critical failures", sum(q.critical > 0 for q in queue))
    cols[2].metric("Runs with warnings", sum(q.warnings > 0 for q in queue))
    cols[3].metric("Runs", len(queue))

    st.subheader("Runs")
    st.caption(
        "Most urgent first. Rows of a quarantined run are the rows it holds back until released; "
        "its lock deadline is when the earliest of them locks (released later, those actions are "
        "created LOCKED). The Triage page lists everything that locks soon."
    )
    st.dataframe(
        queue_rows(queue, svc.clock()),
        hide_index=True,
        column_config=COUNTS
        | {
            # wide enough for their longest words: the grid cut them to "Quarant…" and
            # "Quarantined: awaiting re…" (it sizes a column by its first rows)
            "Review": st.column_config.TextColumn(width=100),
            "Validation": st.column_config.TextColumn(width=220),
            "Started": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            "Lock deadline": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
        },
    )
    by_id = {q.run.id: q for q in queue}
    linked = str(st.query_params.get("run", ""))  # a "Needs review" link names its run
    if linked.isdigit() and int(linked) in by_id:
        st.session_state[RUN_KEY] = int(linked)
        del st.query_params["run"]  # once: the reviewer may pick another run afterwards
    if st.session_state.get(RUN_KEY) not in by_id:
        st.session_state.pop(RUN_KEY, None)  # a run that left the list: start at the top
    chosen = st.selectbox(
        "Run to review", options=list(by_id), format_func=lambda i: run_label(by_id[i]), key=RUN_KEY
    )
    if chosen is not None:
        _show_run(svc, by_id[chosen])
    _show_trend(svc, partners)


def render() -> None:
    st.title("Validation")
    st.page_link(
        FILE_FORMAT_PAGE,
        label="Expected file format per data type, and a dry run of a sample file",
        icon=":material/fact_check:",
    )
    try:
        _show_page()
    except Exception as exc:  # ours in our words; a bug said plainly, its traceback in the log
        if not (ours := isinstance(exc, ConnectBatchError)):
            log.exception("validation page failed")
        why = str(exc) if ours else f"unexpected {type(exc).__name__}: {exc}"
        st.error(f"The validation results cannot be shown: {_plain(why)}")  # it may quote partner text


if __name__ == "__main__":
    render()
