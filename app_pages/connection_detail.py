"""Connection: one connection's settings (Edit), its runs with drill-down (History), its
credentials as in Improvado's connection settings (Credentials), and Delete.

The connection comes from `st.session_state["connection_id"]` (set by the list's Edit and
View History) or the `?connection=` query parameter; the tab from `detail_tab`. Only the open
tab is computed. Widgets that belong to one connection carry its id in their key, so
switching connections never shows another connection's values.
"""

from __future__ import annotations

import zoneinfo
from pathlib import Path
from typing import Any

import streamlit as st

from app_pages import _ui
from connectbatch import webapp
from connectbatch.models import (
    METHOD_LABELS,
    METHODOLOGY_LABELS,
    Connection,
    Credential,
    Direction,
    Method,
    Run,
    RunStatus,
)
from connectbatch.pipeline import review
from connectbatch.services import CredentialInput, Services

TABS = ["Edit", "History", "Credentials", "Delete"]
REJECTS_SHOWN = 1000


def chosen_connection(connections: list[Connection]) -> Connection:
    by_id = {c.id: c for c in connections}
    wanted = st.session_state.get(_ui.CONNECTION_ID)
    if wanted not in by_id:
        try:
            wanted = int(st.query_params.get("connection", ""))
        except ValueError:
            wanted = None
    if wanted not in by_id:
        wanted = connections[0].id
    st.session_state[_ui.CONNECTION_ID] = wanted
    return by_id[wanted]


def on_pick() -> None:
    st.session_state[_ui.CONNECTION_ID] = st.session_state["detail_connection"]
    st.query_params["connection"] = str(st.session_state["detail_connection"])


# --------------------------------------------------------------------------- Edit


def edit_tab(services: Services, c: Connection) -> None:
    st.markdown(
        f"**Data type** {_ui.data_type_label(c.data_type)} · **Direction** "
        f"{_ui.DIRECTION_LABELS[c.direction]} · **Method** {METHOD_LABELS[c.method]} · "
        f"**Methodology** {METHODOLOGY_LABELS[c.methodology]}"
    )
    st.caption("These are fixed: a different kind of connection is a new connection.")
    pull, inbound = _ui.is_pull(c), c.direction is Direction.INBOUND
    k = c.id
    changes: dict[str, Any] = {}
    with st.form(f"edit_form_{k}", border=False):
        changes["name"] = st.text_input("Name", value=c.name, key=f"edit_name_{k}", max_chars=100)
        changes["pattern"] = st.text_input(
            "Attachment file name pattern" if c.method is Method.EMAIL else "File name pattern",
            value=c.pattern,
            key=f"edit_pattern_{k}",
            help="`*` matches any sequence of characters, `?` any single character.",
        )
        if pull:
            changes["folder"] = st.text_input(
                "Mailbox folder" if c.method is Method.EMAIL else "Folder",
                value=c.folder or "",
                key=f"edit_folder_{k}",
            )
            host, port = st.columns([3, 1])
            changes["host"] = host.text_input("Host", value=c.host or "", key=f"edit_host_{k}")
            changes["port"] = port.number_input(
                "Port",
                min_value=1,
                max_value=65535,
                step=1,
                value=c.port,
                key=f"edit_port_{k}",
                placeholder=f"{_ui.DEFAULT_PORTS[c.method]} (standard)",
            )
        if inbound:
            changes["return_email"] = st.text_input(
                "Return e-mail address", value=c.return_email or "", key=f"edit_return_email_{k}"
            )
        if pull or not inbound:
            changes["schedule"] = st.text_input(
                "Schedule (cron)",
                value=c.schedule or "",
                key=f"edit_schedule_{k}",
                placeholder="0 6 * * *",
                help="minute hour day-of-month month day-of-week, in UTC. Empty: only Run now.",
            )
        if inbound:
            left, right = st.columns(2)
            changes["lock_days"] = left.number_input(
                "Lock period (days)",
                min_value=0,
                max_value=3650,
                step=1,
                value=c.lock_days,
                key=f"edit_lock_days_{k}",
            )
            if pull:
                changes["min_age_seconds"] = right.number_input(
                    "Minimum file age (seconds)",
                    min_value=0,
                    step=60,
                    value=c.min_age_seconds,
                    key=f"edit_min_age_{k}",
                )
            zones = sorted(zoneinfo.available_timezones() | {c.timezone})
            changes["timezone"] = st.selectbox(
                "Time zone of dates without an offset",
                zones,
                index=zones.index(c.timezone),
                key=f"edit_timezone_{k}",
            )
            encodings = list(_ui.ENCODINGS) + (
                [c.encoding] if c.encoding and c.encoding not in _ui.ENCODINGS else []
            )
            delimiters = list(_ui.DELIMITERS) + ([c.delimiter] if c.delimiter not in _ui.DELIMITERS else [])
            enc, delim = st.columns(2)
            changes["encoding"] = enc.selectbox(
                "Encoding",
                encodings,
                index=encodings.index(c.encoding or ""),
                format_func=lambda e: _ui.ENCODINGS.get(e, e),
                key=f"edit_encoding_{k}",
            )
            changes["delimiter"] = delim.selectbox(
                "Delimiter",
                delimiters,
                index=delimiters.index(c.delimiter),
                format_func=lambda d: _ui.DELIMITERS.get(d, repr(d)),
                key=f"edit_delimiter_{k}",
            )
        if pull:
            after, archive = st.columns(2)
            changes["after_success"] = after.selectbox(
                "After a successful run",
                list(_ui.AFTER_SUCCESS),
                index=list(_ui.AFTER_SUCCESS).index(c.after_success),
                format_func=lambda a: _ui.AFTER_SUCCESS[a],
                key=f"edit_after_success_{k}",
            )
            changes["archive_folder"] = archive.text_input(
                "Archive folder (when archiving)",
                value=c.archive_folder or "",
                key=f"edit_archive_folder_{k}",
            )
        submitted = st.form_submit_button("Save changes", key="edit_save", type="primary")
    if submitted:
        save(services, c, changes)


def save(services: Services, c: Connection, entered: dict[str, Any]) -> None:
    cleaned = {
        field: (v.strip() or None) if isinstance(v, str) and field not in ("name", "pattern") else v
        for field, v in entered.items()
    }
    cleaned["encoding"] = cleaned.get("encoding", c.encoding) or None
    changes = {f: v for f, v in cleaned.items() if v != getattr(c, f)}
    if not changes:
        st.info("Nothing changed.")
        return
    ok, updated = _ui.safely("Saving", lambda: services.update_connection(c.id, **changes))
    if ok and updated is not None:
        _ui.sync_schedule()
        _ui.flash(
            "success", f"Saved {updated.name}: {', '.join(_ui.FIELD_LABELS.get(f, f) for f in changes)}."
        )
        st.rerun()


# --------------------------------------------------------------------------- History


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
            "Reason": r.reason or "",
        }
        for r in runs
    ]


def _status_colour(value: str) -> str:
    colour = {"Completed": "#1b873f", "Failed": "#d1242f", "In Progress": "#0969da"}.get(value)
    return f"color: {colour}; font-weight: 600" if colour else ""


def history_tab(services: Services, c: Connection) -> None:
    ok, runs = _ui.safely("Loading the history", lambda: services.runs(c.id))
    if not ok or runs is None:
        return
    if not runs:
        st.info(
            "No runs yet. "
            + ("Use Run now on the Connections list." if _ui.is_pull(c) else "Files arrive by themselves.")
        )
        return
    import pandas as pd

    frame = pd.DataFrame(runs_table(runs))
    st.dataframe(
        frame.style.map(_status_colour, subset=["Status"]),
        hide_index=True,
        key=f"history_table_{c.id}",
        column_config={"Reason": st.column_config.TextColumn(width="large")},
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
        run_details(services, c, by_id[run_id])


def run_details(services: Services, c: Connection, run: Run) -> None:
    st.subheader(f"Run {run.id}")
    st.markdown(
        f"{_ui.badge(str(run.status))}"
        + (f" {_ui.badge(run.review)}" if run.review else "")
        + f" started {_ui.when(run.started_at)} by {run.trigger}, ended {_ui.when(run.finished_at)}"
    )
    if run.status is RunStatus.FAILED and run.reason:
        st.error(run.reason)
    if run.review_note:
        st.caption(f"Review note: {run.review_note}")
    numbers = st.columns(6)
    for column, (label, n) in zip(
        numbers,
        [
            ("Files seen", run.files_seen),
            ("Files loaded", run.files_loaded),
            ("Rows accepted", run.rows_accepted),
            ("Rows rejected", run.rows_rejected),
            ("Duplicates", run.rows_duplicate),
            ("Actions created", run.actions_created),
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
            ],
            hide_index=True,
            key=f"run_files_{run.id}",
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
    st.dataframe(_ui.rejects_table(rejects, names), hide_index=True, key=f"rejects_{run.id}")
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
            f"{names.get(file_id, f'File {file_id}')}: {sentence[:120]}", expanded=kind != "success"
        ):
            {"error": st.error, "warning": st.warning}.get(kind, st.success)(sentence)
            st.dataframe(
                review.outcome_rows(report),
                hide_index=True,
                key=f"validation_{run.id}_{file_id}",
                column_config={"Expectation": st.column_config.TextColumn(width="large")},
            )


def results_section(services: Services, c: Connection, run: Run) -> None:
    _found, paths = _ui.safely("Listing results files", lambda: services.results_files(c.id))
    mine = [p for p in paths or [] if p.name.startswith(f"run{run.id}-")]
    if not mine:
        return
    st.markdown("**Results files**")
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
    """'run3-file4-calls.csv.results.csv' -> 'Results of calls.csv'."""
    original = file_name.split("-", 2)[-1]
    for suffix, what in ((".results.csv", "Results"), (".summary.json", "Summary")):
        if original.endswith(suffix):
            return f"{what} of {original.removesuffix(suffix)}"
    return original


def _reader(path: Path) -> Any:
    return lambda: path.read_bytes()


# --------------------------------------------------------------------------- Credentials


def credentials_tab(services: Services, c: Connection) -> None:
    ok, creds = _ui.safely("Loading credentials", lambda: services.credentials(c.id))
    if not ok or creds is None:
        return
    st.caption(
        "Every set of login details of this connection. New ones become main and are used from "
        "now on; older ones stay as secondary."
    )
    if not creds:
        st.info("No credentials. Use Re-connect below to add them.")
    for cred in creds:
        credential_card(services, c, cred)
    reconnect(services, c)


def credential_card(services: Services, c: Connection, cred: Credential) -> None:
    with st.container(border=True, key=f"credential_{cred.id}"):
        st.markdown(
            f"**{cred.name}** {_ui.badge(cred.status)} "
            + (":blue-badge[Main]" if cred.is_main else ":gray-badge[Secondary]")
        )
        kind = "Login on our server (provisioned)" if cred.kind == "provisioned" else "Login on their server"
        st.caption(
            f"{kind} · Account {cred.username or '—'} · ID {cred.id} · Created {_ui.when(cred.created_at)}"
            f" · Updated {_ui.when(cred.updated_at)}"
            + (f" · Return e-mail {cred.return_email}" if cred.return_email else "")
        )
        if cred.status == "Error":
            st.error(cred.last_error or "The last connection attempt failed.")
        if c.method is Method.SFTP and cred.kind == "remote":
            host_key(services, c, cred)
        with st.container(horizontal=True):
            if not cred.is_main and st.button("Make main", key=f"cred_main_{cred.id}"):
                ok, _ = _ui.safely("Make main", lambda: services.make_main_credential(cred.id))
                if ok:
                    _ui.flash("success", f"{cred.name} is now the main credential.")
                    st.rerun()
            with st.popover("Delete", icon=":material/delete:", key=f"cred_delete_menu_{cred.id}"):
                st.write(
                    f"Delete **{cred.name}**?"
                    + (" The partner's login stops working at once." if cred.kind == "provisioned" else "")
                )
                if st.button("Delete credential", key=f"cred_delete_{cred.id}", type="primary"):
                    ok, _ = _ui.safely("Deleting the credential", lambda: services.delete_credential(cred.id))
                    if ok:
                        _ui.flash("success", f"Deleted the credential {cred.name}.")
                        st.rerun()


def host_key(services: Services, c: Connection, cred: Credential) -> None:
    if not cred.host_key:
        st.caption("Host key: none pinned yet. The next connection pins the key the server presents.")
        return
    fingerprint = services.host_key_fingerprint(cred.host_key) or "unreadable"
    st.caption(f"SFTP host key fingerprint: `{fingerprint}`")
    with st.expander("Host key"):
        st.code(cred.host_key, language=None, wrap_lines=True)
    if cred.is_main:
        changed = "host key" in (cred.last_error or "").lower()
        st.caption(
            "If the partner confirms their server's key changed, accept it: the next run pins the "
            "key the server presents."
        )
        if st.button(
            "Accept new host key", key="accept_host_key", type="primary" if changed else "secondary"
        ):
            ok, _ = _ui.safely("Accepting the host key", lambda: services.accept_host_key(c.id))
            if ok:
                _ui.flash("success", "The old host key is forgotten; the next run pins the server's key.")
                st.rerun()


def reconnect(services: Services, c: Connection) -> None:
    st.subheader("Re-connect")
    pull = _ui.is_pull(c)
    k = c.id
    if pull:
        st.caption(
            "Enter the new login details, test them, then Re-connect: they become the main credential."
        )
    else:
        st.caption(
            "Re-connect creates a new provisioned login (shown once) and makes it main; the old "
            "one keeps working until you delete it."
        )
    name = st.text_input("Credential name", value=f"{c.name} login", key=f"reconnect_name_{k}")
    given: dict[str, Any] = {"name": name.strip()}
    if pull:
        use_key = False
        if c.method is Method.SFTP:
            use_key = (
                st.radio(
                    "Log in with",
                    ["password", "key"],
                    horizontal=True,
                    key=f"reconnect_auth_{k}",
                    format_func=lambda a: _ui.LOGIN_WITH[a],
                )
                == "key"
            )
        given["username"] = st.text_input("Username", key=f"reconnect_username_{k}").strip() or None
        if use_key:
            upload = st.file_uploader("Private key (OpenSSH or PEM)", key=f"reconnect_key_file_{k}")
            given["private_key"] = upload.getvalue().decode("utf-8", "replace") if upload else None
        else:
            given["password"] = (
                st.text_input("Password", type="password", key=f"reconnect_password_{k}") or None
            )
    if c.direction is Direction.INBOUND:
        email = st.text_input(
            "Return e-mail address", value=c.return_email or "", key=f"reconnect_return_email_{k}"
        )
        given["return_email"] = email.strip() or None
    credential = CredentialInput(**given)
    with st.container(horizontal=True):
        test = pull and st.button("Test connection", key="reconnect_test", icon=":material/network_check:")
        save = st.button("Re-connect", key="reconnect_save", type="primary")
    if test:
        test_login(services, c, credential)
    if save:
        if pull and not (credential.username and (credential.password or credential.private_key)):
            st.error("Enter the username and the password (or private key) first.")
            return
        if credential.return_email and "@" not in credential.return_email:
            st.error(f"Return e-mail: {credential.return_email!r} is not an e-mail address")
            return
        ok, result = _ui.safely("Re-connect", lambda: services.add_credential(c.id, credential))
        if ok and result is not None:
            created, provisioned = result
            if provisioned is not None:
                st.session_state[_ui.PROVISIONED] = (c.name, provisioned)
            _ui.flash("success", f"{created.name} is now the main credential.")
            st.rerun()


def test_login(services: Services, c: Connection, credential: CredentialInput) -> None:
    where = f"{c.host}{f':{c.port}' if c.port else ''}"
    with st.status(f"Connecting to {where}…") as status:
        try:
            pinned = next((x.host_key for x in services.credentials(c.id) if x.is_main), None)
            found = services.test_connection(c, credential, host_key=pinned)
        except Exception as exc:
            status.update(label=f"Could not connect to {where}", state="error")
            _ui.show_error("Test connection", exc)
            return
        status.update(label=f"Connected to {where}", state="complete")
    if found:
        st.success(f"Connected. {len(found)} file(s) match the pattern:")
        st.dataframe(
            [{"File": f.name, "Size": _ui.size(f.size), "Modified": _ui.when(f.mtime)} for f in found],
            hide_index=True,
            key="reconnect_test_files",
        )
    else:
        st.success("Connected. No file matches the pattern right now.")


# --------------------------------------------------------------------------- Delete


def delete_tab(services: Services, c: Connection) -> None:
    st.warning(
        f"Deleting **{c.name}** removes the connection and its credentials (provisioned logins "
        "stop working at once). Its runs, data and actions stay."
    )
    typed = st.text_input("Type the connection's name to confirm", key=f"delete_confirm_{c.id}")
    if st.button(
        "Delete connection", key="delete_connection", type="primary", disabled=typed.strip() != c.name
    ):
        ok, _ = _ui.safely("Deleting the connection", lambda: services.delete_connection(c.id))
        if ok:
            _ui.sync_schedule()
            st.session_state.pop(_ui.CONNECTION_ID, None)
            _ui.flash("success", f"Deleted the connection {c.name}.")
            st.switch_page(_ui.LIST_PAGE)


# --------------------------------------------------------------------------- page


def render() -> None:
    _ui.show_provisioned_once()
    services = webapp.services()
    ok, connections = _ui.safely("Loading connections", services.connections)
    if not ok or connections is None:
        st.title("Connection")
        return
    if not connections:
        st.title("Connection")
        st.info("No connections yet.")
        if st.button("Create Connection", key="create_connection", type="primary"):
            st.switch_page(_ui.WIZARD_PAGE)
        return
    c = chosen_connection(connections)
    names = {x.id: x.name for x in connections}
    st.query_params["connection"] = str(c.id)
    title, pick = st.columns([3, 2], vertical_alignment="bottom")
    title.title(c.name)
    st.session_state["detail_connection"] = c.id
    pick.selectbox(
        "Connection",
        [x.id for x in connections],
        format_func=lambda i: names[i],
        key="detail_connection",
        on_change=on_pick,
    )
    st.markdown(f"{_ui.kind_line(c)} · {_ui.badge(str(c.status))} · Last Active {_ui.when(c.last_active)}")
    if st.button("Back to Connections", key="back_to_list", type="tertiary", icon=":material/arrow_back:"):
        st.switch_page(_ui.LIST_PAGE)
    _ui.show_flash()
    if st.session_state.get(_ui.DETAIL_TAB) not in TABS:
        st.session_state[_ui.DETAIL_TAB] = TABS[0]
    tabs = st.tabs(TABS, key=_ui.DETAIL_TAB, on_change="rerun")
    renderers = [edit_tab, history_tab, credentials_tab, delete_tab]
    for tab, draw in zip(tabs, renderers, strict=True):
        if tab.open:
            with tab:
                draw(services, c)


if __name__ == "__main__":
    render()
