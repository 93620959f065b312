"""Partners: the businesses connections belong to (issue 11).

Every logged-in role reads the list (name, type, return e-mail, MediaIds, connections, last
active) and each partner's connections; analysts add, edit and delete partners. A partner is
not deleted while connections belong to it: the service refuses and names them, and the page
shows that. A publisher's MediaIds make the call-data explorer, the pending actions and the
clicks browser show "Name (98765)" instead of the bare number. Partner text is shown through
escaping.visible; the service layer checks the analyst role again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import streamlit as st

from app_pages import _ui
from connectbatch import webapp
from connectbatch.errors import ConnectBatchError
from connectbatch.escaping import markdown_text, visible
from connectbatch.models import PARTNER_TYPE_LABELS, Connection, Partner, PartnerType, Role
from connectbatch.services import Services

PICK_KEY = "partners_pick"
PROBLEM_KEY, DONE_KEY = "partners_problem", "partners_done"
TYPES = [t.value for t in PartnerType]


def _type_label(value: str) -> str:
    return PARTNER_TYPE_LABELS[PartnerType(value)]


def last_active(connections: list[Connection]) -> dt.datetime | None:
    """When any of the partner's connections last did something."""
    moments = [c.last_active for c in connections if c.last_active is not None]
    return max(moments) if moments else None


def partner_rows(overview: list[tuple[Partner, list[Connection]]]) -> list[dict[str, Any]]:
    return [
        {
            "Name": visible(p.name),
            "Type": PARTNER_TYPE_LABELS[p.type],
            "Return e-mail": visible(p.return_email or ""),
            "MediaIds": ", ".join(str(m) for m in p.media_ids),
            "Connections": len(owned),
            "Last active": last_active(owned),
        }
        for p, owned in overview
    ]


def media_ids(text: str) -> list[str]:
    """MediaIds typed as "98765, 98766" (commas or spaces); the service checks each."""
    return [part for part in text.replace(",", " ").split() if part]


def _fields(prefix: str) -> dict[str, Any]:
    state = st.session_state
    return {
        "name": str(state.get(f"{prefix}_name") or ""),
        "type": str(state.get(f"{prefix}_type") or PartnerType.BRAND.value),
        "return_email": str(state.get(f"{prefix}_email") or "") or None,
        "contacts": str(state.get(f"{prefix}_contacts") or "") or None,
        "notes": str(state.get(f"{prefix}_notes") or "") or None,
        "media_ids": media_ids(str(state.get(f"{prefix}_media") or "")),
    }


def _add(services: Services) -> None:
    state = st.session_state
    fields = _fields("partners_new")
    try:
        created = services.add_partner(
            fields["name"], fields["type"], contacts=fields["contacts"], return_email=fields["return_email"],
            notes=fields["notes"], media_ids=fields["media_ids"],
        )  # fmt: skip
    except ConnectBatchError as exc:
        state[PROBLEM_KEY] = _ui.error_text(exc)  # the field as labelled
        return
    state[DONE_KEY] = f"Added partner {markdown_text(created.name)}."
    state[PICK_KEY] = created.id
    for suffix in ("name", "email", "contacts", "notes", "media"):
        state[f"partners_new_{suffix}"] = ""


def _save(services: Services, partner_id: int) -> None:
    state = st.session_state
    try:
        saved = services.update_partner(partner_id, **_fields(f"partners_edit_{partner_id}"))
    except ConnectBatchError as exc:
        state[PROBLEM_KEY] = _ui.error_text(exc)  # the field as labelled
        return
    state[DONE_KEY] = f"Saved partner {markdown_text(saved.name)}."


def _delete(services: Services, partner_id: int) -> None:
    state = st.session_state
    try:
        gone = services.partner(partner_id)
        services.delete_partner(partner_id)
    except ConnectBatchError as exc:
        state[PROBLEM_KEY] = _ui.error_text(exc)  # the field as labelled
        return
    state[DONE_KEY] = f"Deleted partner {markdown_text(gone.name)}."
    state.pop(PICK_KEY, None)


def _inputs(prefix: str, partner: Partner | None) -> None:
    """The partner's fields; defaults from `partner` (editing) or empty (adding)."""
    p = partner or Partner(id=0, name="", type=PartnerType.BRAND)
    top = st.columns([2, 1, 2])
    top[0].text_input("Name", value=p.name, key=f"{prefix}_name", max_chars=100)
    top[1].selectbox(
        "Type", TYPES, index=TYPES.index(p.type.value), key=f"{prefix}_type", format_func=_type_label
    )
    top[2].text_input("Return e-mail", value=p.return_email or "", key=f"{prefix}_email")
    st.text_input(
        "MediaIds", value=", ".join(str(m) for m in p.media_ids), key=f"{prefix}_media",
        help="A publisher's platform MediaIds, separated by commas: call data, actions and clicks show the "
        "partner's name next to them. Each MediaId belongs to one partner.",
    )  # fmt: skip
    bottom = st.columns(2)
    bottom[0].text_area("Contacts", value=p.contacts or "", key=f"{prefix}_contacts")
    bottom[1].text_area("Notes", value=p.notes or "", key=f"{prefix}_notes")


def _connections(owned: list[Connection], may_edit: bool) -> None:
    if not owned:
        st.caption("No connections belong to this partner.")
        return
    for c in owned:
        text = f"{visible(c.name)} · {_ui.kind_line(c)}"
        if may_edit:  # the connection page is the analysts' (a link's label is Markdown)
            st.page_link(
                _ui.DETAIL_PAGE,
                label=markdown_text(text),
                icon=":material/cable:",
                query_params={"connection": str(c.id)},
            )
        else:
            st.text(text)  # plain text: a partner's name is not markdown


def _show_partner(services: Services, partner: Partner, owned: list[Connection], may_edit: bool) -> None:
    st.subheader(markdown_text(partner.name))
    st.markdown("**Connections**")
    _connections(owned, may_edit)
    if not may_edit:
        return
    prefix = f"partners_edit_{partner.id}"
    with st.expander("Edit", expanded=False):
        _inputs(prefix, partner)
        st.button("Save", key=f"{prefix}_save", type="primary", on_click=_save, args=(services, partner.id))
    with st.expander("Delete", expanded=False):
        if owned:
            st.caption(f"{len(owned)} connection(s) belong to this partner: delete them or move them to "
                       "another partner first.")  # fmt: skip
        st.button("Delete partner", key=f"{prefix}_delete", on_click=_delete, args=(services, partner.id))


def render() -> None:
    st.title("Partners")
    st.caption(
        "The businesses connections belong to. An outbound connection exports only its partner's data."
    )
    services = webapp.services()
    state = st.session_state
    if PROBLEM_KEY in state:
        st.error(markdown_text(str(state.pop(PROBLEM_KEY))))
    if DONE_KEY in state:
        st.success(visible(str(state.pop(DONE_KEY))))
    try:
        overview = services.partner_overview()
    except ConnectBatchError as exc:
        _ui.show_error("Reading the partners", exc)
        return
    may_edit = services.user is None or services.user.may(Role.ANALYST)
    if overview:
        st.dataframe(partner_rows(overview), hide_index=True)
        by_id = {p.id: (p, owned) for p, owned in overview}
        if state.get(PICK_KEY) not in by_id:
            state.pop(PICK_KEY, None)
        chosen = st.selectbox(
            "Partner", list(by_id), key=PICK_KEY, format_func=lambda i: visible(by_id[i][0].name),
        )  # fmt: skip
        if chosen is not None:
            _show_partner(services, *by_id[chosen], may_edit)
    else:
        st.info("No partners yet." + (" Add the first one below." if may_edit else ""))
    if may_edit:
        st.subheader("Add a partner")
        _inputs("partners_new", None)
        st.button("Add partner", key="partners_add", type="primary", on_click=_add, args=(services,))


if __name__ == "__main__":
    render()
