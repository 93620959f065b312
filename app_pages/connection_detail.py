"""Connection: one connection's settings (Edit), its runs with drill-down (History), its
credentials as in Improvado's connection settings (Credentials), and Delete.

The connection comes from `st.session_state["connection_id"]` (the list's Edit and View
History) or `?connection=`; the tab from `detail_tab`. Only the open tab is computed. Widgets
of one connection carry its id in their key, so switching never shows another's values. The
forms are app_pages/_forms.py's; the History drill-down is app_pages/_run_history.py.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

import streamlit as st

from app_pages import _endpoint, _forms, _provisioned, _schedule, _syncback, _transfer_form, _ui
from app_pages._mapping import mapping_tab
from app_pages._run_history import history_tab
from app_pages.connections import carry_out_run_request, request_run
from connectbatch import webapp
from connectbatch.escaping import as_stored, markdown_text, visible
from connectbatch.models import (
    METHOD_LABELS,
    METHODOLOGY_LABELS,
    Connection,
    ConnectionStatus,
    Credential,
    Direction,
    Method,
    Methodology,
)
from connectbatch.services import CredentialInput, Services
from connectbatch.transfer.specs import default_spec

TABS = ["Edit", "History", "Credentials", "Mapping", "Delete"]


def chosen_connection(connections: list[Connection]) -> tuple[Connection, int | None]:
    """The connection to show (the address's, else this tab's last, else the first), and the
    id asked for when that connection no longer exists (deleted in another tab or by another
    person). The address wins: a link (Partners, Triage) or the browser's Back names the
    connection to show, and the tab's last one showed instead."""
    by_id = {c.id: c for c in connections}
    asked: list[object] = []
    with contextlib.suppress(ValueError):
        asked.append(int(st.query_params.get("connection", "")))
    asked.append(st.session_state.get(_ui.CONNECTION_ID))
    wanted = next((i for i in asked if i in by_id), None)
    gone = next((i for i in asked if isinstance(i, int)), None) if wanted is None else None
    wanted = connections[0].id if wanted is None else wanted
    st.session_state[_ui.CONNECTION_ID] = wanted
    return by_id[wanted], gone


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
    keys = _forms.Keys("edit_", f"_{c.id}")
    # The values the form was filled with: a save sends what the person changed from them, so
    # that it never puts back what another tab or person saved since (it sent every field).
    shown_key = keys("shown")
    shown: dict[str, Any] | None = st.session_state.get(shown_key)
    stale = shown is not None and any(getattr(c, f) != v for f, v in shown.items())
    if stale and not st.session_state.get("edit_save"):  # a save now keeps what was typed
        _forms.forget(keys, keep="")
        st.info(
            "This connection was changed elsewhere since this form was filled: it shows the saved settings."
        )
        shown = None
    changes: dict[str, Any] = {}
    with st.form(f"edit_form_{c.id}", border=False):
        _forms.seed(keys("name"), c.name)
        changes["name"] = st.text_input("Name", key=keys("name"), max_chars=100)
        changes["pattern"] = _forms.pattern_input(keys, c.method, c.pattern)
        if pull:
            changes |= _forms.location_form(keys, c.method, c)
            st.markdown(f"**{METHOD_LABELS[c.method]} settings**")
            changes["transfer"] = _transfer_form.transfer_form(keys, c.transfer or default_spec(c.method))
        if inbound:
            changes["return_email"] = _forms.return_email_input(keys, c.return_email)
        changes |= _forms.run_settings_form(keys, c, pull=pull, inbound=inbound, live=False)
        submitted = st.form_submit_button("Save changes", key="edit_save", type="primary")
    if shown is None:
        shown = st.session_state[shown_key] = {f: getattr(c, f) for f in changes}
    if submitted:
        save(services, c, changes, shown, keys)


def save(
    services: Services, c: Connection, entered: dict[str, Any], shown: dict[str, Any], keys: _forms.Keys
) -> None:
    """Save the fields the person changed from what the form `shown` them."""
    cleaned = {
        field: (v.strip() or None) if isinstance(v, str) and field not in ("name", "pattern") else v
        for field, v in entered.items()
    }
    cleaned["encoding"] = cleaned.get("encoding", c.encoding) or None
    edited = {f: v for f, v in cleaned.items() if v != shown.get(f, getattr(c, f))}
    changes = {f: v for f, v in edited.items() if v != getattr(c, f)}
    if not changes:
        st.info("Nothing changed.")
        return
    ok, updated = _ui.safely("Saving", lambda: services.update_connection(c.id, **changes))
    if ok and updated is not None:
        _forms.forget(keys, keep="")  # filled again from what is saved, others' changes too
        _ui.sync_schedule()
        _ui.flash(
            "success",
            f"Saved {markdown_text(updated.name)}: {', '.join(_ui.field_label(f) for f in changes)}.",
        )
        st.rerun()


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
    if c.methodology is Methodology.PUSH:  # where the partner sends: not a secret, always here
        _endpoint.where_partners_send(services, c)
    if c.method is Method.SFTP and _ui.is_pull(c):
        host_key(services, c)
    for cred in creds:
        credential_card(services, c, cred, only=len(creds) == 1)
    reconnect(services, c)


def credential_card(services: Services, c: Connection, cred: Credential, *, only: bool = False) -> None:
    with st.container(border=True, key=f"credential_{cred.id}"):
        st.markdown(
            f"**{markdown_text(cred.name)}** {_ui.badge(cred.status)} "
            + (":blue-badge[Main]" if cred.is_main else ":gray-badge[Secondary]")
        )
        kind = "Login on our server (provisioned)" if cred.kind == "provisioned" else "Login on their server"
        st.caption(
            f"{kind} · Account {markdown_text(cred.username or '—')} · ID {cred.id}"
            f" · Created {_ui.when(cred.created_at)} · Updated {_ui.when(cred.updated_at)}"
            + (f" · Return e-mail {markdown_text(cred.return_email)}" if cred.return_email else "")
        )
        others = [n for n in cred.used_by if n != c.name]
        if others:  # credentials reuse: one set, several connections of the partner
            st.caption("Shared with " + ", ".join(markdown_text(n) for n in others))
        if cred.status == "Error":
            st.error(markdown_text(cred.last_error) or "The last connection attempt failed.")
        with st.container(horizontal=True):
            if not cred.is_main and st.button("Make main", key=f"cred_main_{cred.id}"):
                ok, _ = _ui.safely("Make main", lambda: services.make_main_credential(cred.id, c.id))
                if ok:
                    _ui.flash("success", f"{markdown_text(cred.name)} is now the main credential.")
                    st.rerun()
            with st.popover("Delete", icon=":material/delete:", key=f"cred_delete_menu_{cred.id}"):
                st.write(
                    f"Delete **{markdown_text(cred.name)}**?"
                    + (" The partner's login stops working at once." if cred.kind == "provisioned" else "")
                )
                if others:
                    st.warning(
                        "Also used by " + ", ".join(markdown_text(n) for n in others) + ": it cannot be "
                        "deleted while they use it. This connection can stop using it; theirs keep working."
                    )
                    if st.button("Stop using it here", key=f"cred_detach_{cred.id}"):
                        ok, _ = _ui.safely(
                            "Stopping using the credential", lambda: services.detach_credential(cred.id, c.id)
                        )
                        if ok:
                            _ui.flash(
                                "success",
                                f"{markdown_text(c.name)} no longer uses {markdown_text(cred.name)}.",
                            )
                            st.rerun()
                confirmed = True
                if only:  # the last login: the connection stops working until a Re-connect
                    st.warning(only_credential_warning(c))
                    confirmed = st.checkbox(
                        "Delete it anyway", key=f"cred_delete_confirm_{cred.id}", value=False
                    )
                if st.button(
                    "Delete credential", key=f"cred_delete_{cred.id}", type="primary", disabled=not confirmed
                ):
                    ok, _ = _ui.safely("Deleting the credential", lambda: services.delete_credential(cred.id))
                    if ok:
                        _ui.flash("success", f"Deleted the credential {markdown_text(cred.name)}.")
                        st.rerun()


def only_credential_warning(c: Connection) -> str:
    """What deleting a connection's only credential stops, in the user's words."""
    if _ui.is_pull(c):
        stops = "its pulls fail (scheduled and Run now)"
    elif c.method is Method.EMAIL:
        stops = "results go to the connection's or the partner's return address, not its own"
    else:
        stops = "the partner can no longer log in to send or collect files"
    return (
        f"This is the only credential of {markdown_text(c.name)}: without it {stops} until you add one with "
        "Re-connect below."
    )


def host_key(services: Services, c: Connection) -> None:
    """The SFTP host key pinned for the connection's server, and a different key it presented
    since. Accepting needs the fingerprint a person checked with the partner, typed in: the
    pin belongs to the server, so no new credential can get past a changed key."""
    ok, found = _ui.safely("Loading the host key", lambda: services.host_key(c.id))
    if not ok:
        return
    with st.container(border=True, key="host_key"):
        st.markdown("**SFTP host key**")
        if found is None or not (found.host_key or found.presented_key):
            st.caption("None pinned yet. The first connection pins the key the server presents.")
            return
        st.caption(f"Server {markdown_text(found.host)}:{found.port} · pinned {_ui.when(found.pinned_at)}")
        st.markdown(f"Pinned fingerprint: `{found.fingerprint or 'none'}`")
        if found.host_key:
            with st.expander("Pinned host key"):
                _provisioned.copyable(found.host_key)
        if not found.presented_fingerprint:
            return
        st.error(
            f"The server presented a different key on {_ui.when(found.presented_at)}: "
            f"`{found.presented_fingerprint}`. Pulls are refused until a person accepts it."
        )
        st.caption(
            "Ask the partner for their server's fingerprint (`ssh-keygen -lf` on the host key), "
            "and type the fingerprint they read out. It must match the key the server presented."
        )
        typed = st.text_input("Fingerprint you checked", key="accept_host_key_fingerprint",
                              placeholder="SHA256:...")  # fmt: skip
        if st.button("Accept new host key", key="accept_host_key", type="primary"):
            ok, accepted = _ui.safely("Accepting the host key", lambda: services.accept_host_key(c.id, typed))
            if ok and accepted is not None:
                _ui.flash("success", f"Pinned the host key {accepted.fingerprint}.")
                st.rerun()


def reconnect(services: Services, c: Connection) -> None:
    st.subheader("Re-connect")
    pull = _ui.is_pull(c)
    k = c.id
    if pull:
        st.caption(
            "Enter the new login details, test them, then Re-connect: they become the main "
            "credential and the connection pulls with them at once."
        )
    else:
        st.caption(
            "Re-connect creates a new provisioned login (shown once) and makes it main; the old "
            "one keeps working until you delete it."
        )
    keys = _forms.Keys("reconnect_", f"_{k}")
    _forms.seed(keys("name"), f"{c.name} login")
    name = st.text_input("Credential name", key=keys("name"))
    credential = CredentialInput(name=name.strip())
    if pull:
        credential, _file_name = _forms.credential_form(keys, c.method, credential)
    if c.direction is Direction.INBOUND:
        credential = replace(credential, return_email=_forms.return_email_input(keys, c.return_email))
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
                _provisioned.offer(c.name, provisioned)
            if pull:  # the seed's Re-connect refreshes the connection: a pull with the new login
                request_run(c.id)
            refreshed = " A pull with it has started." if pull else ""
            _ui.flash("success", f"{markdown_text(created.name)} is now the main credential.{refreshed}")
            st.rerun()


def test_login(services: Services, c: Connection, credential: CredentialInput) -> None:
    where = markdown_text(f"{c.host}{f':{c.port}' if c.port else ''}")
    with st.status(f"Connecting to {where}…") as status:
        try:
            found = services.test_connection(c, credential)  # the server's pin applies
        except Exception as exc:
            status.update(label=f"Could not connect to {where}", state="error")
            _ui.show_error("Test connection", exc)
            return
        status.update(label=f"Connected to {where}", state="complete")
    if found:
        st.success(f"Connected. {len(found)} file(s) match the pattern:")
        listed = [{"File": f.name, "Size": _ui.size(f.size), "Modified": _ui.when(f.mtime)} for f in found]
        st.dataframe(_ui.shown_rows(listed), hide_index=True, key="reconnect_test_files")  # partner's names
    else:
        st.success("Connected. No file matches the pattern right now.")


# --------------------------------------------------------------------------- Delete


def delete_tab(services: Services, c: Connection) -> None:
    st.warning(
        f"Deleting **{markdown_text(c.name)}** removes the connection and its credentials "
        "(provisioned logins stop working at once). Its runs, data and actions stay."
    )
    typed = st.text_input("Type the connection's name to confirm", key=f"delete_confirm_{c.id}")
    if st.button(
        # as shown (control characters escaped: no one can type them) or as stored; copied
        # from the warning above, the name carries markdown_text's joiners: dropped
        "Delete connection", key="delete_connection", type="primary",
        disabled=as_stored(typed).strip() not in (c.name.strip(), visible(c.name).strip()),
    ):  # fmt: skip
        ok, _ = _ui.safely("Deleting the connection", lambda: services.delete_connection(c.id))
        if ok:
            _ui.sync_schedule()
            st.session_state.pop(_ui.CONNECTION_ID, None)
            _ui.flash("success", f"Deleted the connection {markdown_text(c.name)}.")
            st.switch_page(_ui.LIST_PAGE)


# --------------------------------------------------------------------------- page


def export_now(services: Services, c: Connection) -> None:
    """Export now: what this outbound connection has not exported yet (its partner's rows
    loaded or changed since the last export), the same service as the schedule and the CLI."""
    ok, ledger = _ui.safely("Loading exports", lambda: services.exports(c.id, limit=1))
    if ok and ledger:
        last = ledger[0]
        st.caption(
            f"Last export {_ui.when(last.created_at)}: {last.rows:,} rows "
            f"({last.new_rows:,} new, {last.changes:,} status changes) "
            f"in {markdown_text(last.file_name or '-')}"
        )
    if st.button("Export now", key="export_now", icon=":material/upload_file:"):
        ok, done = _ui.safely("Export now", lambda: services.export_now(c.id))
        if ok:
            if done is None:
                _ui.flash("info", "Nothing new to export: every row and status change went out already.")
            else:
                _ui.flash("success", f"Exported {done.rows:,} rows to {markdown_text(done.file_name)}.")
            st.rerun()


def render() -> None:
    _provisioned.show_once()
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
    c, gone = chosen_connection(connections)
    names = {x.id: x.name for x in connections}
    st.query_params["connection"] = str(c.id)
    title, pick = st.columns([3, 2], vertical_alignment="bottom")
    title.title(markdown_text(c.name))
    st.session_state["detail_connection"] = c.id
    pick.selectbox(
        "Connection",
        [x.id for x in connections],
        format_func=lambda i: visible(names[i]),
        key="detail_connection",
        on_change=on_pick,
    )
    if gone is not None:  # not another connection's tabs in its place: a Save would act on them
        st.warning(f"Connection {gone} no longer exists: deleted meanwhile, nothing typed into it was saved.")
        st.button(f"Open {markdown_text(c.name)}", key="detail_open_shown")
        return
    st.markdown(f"{_ui.kind_line(c)} · {_ui.badge(str(c.status))} · Last Active {_ui.when(c.last_active)}")
    partner = services.partner_names().get(c.partner_id or 0)
    if partner is not None:
        st.caption(f"Partner: {markdown_text(partner)}")
    _ui.delivery_banner(c.id)  # this connection's late, missing, drifting files
    if c.direction is Direction.OUTBOUND:
        export_now(services, c)
    elif c.sync_back:
        _syncback.sync_back_now(services, c)
    # Held runs, not only the status: a later failed run sets Failed while a batch still waits.
    _, waiting = _ui.safely("Loading the runs awaiting review", services.quarantined)
    held = [r.id for r in waiting or [] if r.connection_id == c.id]
    if held or c.status is ConnectionStatus.NEEDS_REVIEW:
        _ui.review_link(held[0] if held else None, "Needs review: a batch is held on the Validation page")
    with st.container(horizontal=True, gap="small"):
        if st.button(
            "Back to Connections", key="back_to_list", type="tertiary", icon=":material/arrow_back:"
        ):
            st.switch_page(_ui.LIST_PAGE)
        if _ui.is_pull(c):  # the one kind a person can start; push and exports run by themselves
            st.button("Run now", key="detail_run_now", icon=":material/play_arrow:",
                      on_click=request_run, args=(c.id,))  # fmt: skip
    if c.schedule:
        st.caption("Schedule: `" + c.schedule + "` · " + " · ".join(_schedule.lines(c.schedule)))
    if carry_out_run_request([c]):  # the run changed the connection's status and history
        ok, fresh = _ui.safely("Loading the connection", lambda: services.connection(c.name))
        c = fresh if ok and fresh is not None else c
    _ui.show_flash()
    if st.session_state.get(_ui.DETAIL_TAB) not in TABS:
        st.session_state[_ui.DETAIL_TAB] = TABS[0]
    tabs = st.tabs(TABS, key=_ui.DETAIL_TAB, on_change="rerun")
    renderers = [edit_tab, history_tab, credentials_tab, mapping_tab, delete_tab]
    for tab, draw in zip(tabs, renderers, strict=True):
        if tab.open:
            with tab:
                draw(services, c)


if __name__ == "__main__":
    render()
