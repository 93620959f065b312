"""Pending actions: every call conversion (or conversion) becomes an action that can be
modified or reversed until its connection's lock period ends.

Filter and page through the actions, select one or many, then set a new amount or reverse
them with a reason; each action reports its own outcome. Locked actions are read-only:
they are marked in the table and cannot be selected. The audit trail of one action shows
who changed what, when and why.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import streamlit as st

from app_pages import _partner_filter, _ui
from connectbatch import webapp
from connectbatch.errors import ConnectBatchError
from connectbatch.escaping import markdown_text, visible
from connectbatch.explorer import ActionOutcome, ActionPage
from connectbatch.models import Action, ActionStatus
from connectbatch.services import Services

PAGE_SIZES = (25, 50, 100, 250)
STATUSES = [s.value for s in ActionStatus]
MODIFY, REVERSE = "Modify amount", "Reverse"
ALL = "All connections"
PICKER_SIZE = 500  # changeable actions the picker offers beyond the page shown, pending first
# The change form's fields and their blank values, restored after a successful Apply.
FORM_DEFAULTS: dict[str, Any] = {"actions_change": MODIFY, "actions_amount": 0.0, "actions_reason": ""}


def _status(page: ActionPage, a: Action) -> str:
    """LOCKED once its lock time passed, the lock job run or not; a locked reversal or
    modification says what it was (Action.status_text)."""
    due = page.is_locked(a) and a.status is not ActionStatus.LOCKED
    return ActionStatus.LOCKED.value if due else a.status_text


def table_rows(
    page: ActionPage, names: dict[int, str], partners: dict[int, str] | None = None
) -> list[dict[str, Any]]:
    """The table; `partners` names each connection's partner (connection id -> name)."""
    owners = partners or {}
    return [
        {
            "Action": a.label,
            "Status": _status(page, a),
            "Locked": page.is_locked(a),
            "Days to lock": round(page.days_to_lock(a), 1),
            "Amount": float(a.amount),
            "Original amount": float(a.original_amount),
            "Currency": a.currency or "",  # where the row named one (conversions' CurrencyCode)
            "Source key": visible(a.source_key),
            "Connection": visible(names.get(a.connection_id, f"#{a.connection_id} (deleted)")),
            "Partner": visible(owners.get(a.connection_id, "")),
            "Event date": a.event_date,
            "Lock date": a.lock_at,
            "Reason": visible(a.reason or ""),  # a modifications file's Reason cell: partner text
        }
        for a in page.actions
    ]


def audit_rows(services: Services, action_id: int) -> list[dict[str, Any]]:
    return [
        {
            "When": e.changed_at,
            # when the change took effect at the brand: a file's ModificationDate (the newest
            # one wins), else when it was made; empty on locks
            "Effective": e.effective_at,
            "Who": e.actor,
            "Change": e.change,
            "Old status": e.old_status,
            "New status": e.new_status,
            "Old amount": None if e.old_amount is None else float(e.old_amount),
            "New amount": None if e.new_amount is None else float(e.new_amount),
            "Reason": visible(e.reason or ""),
        }
        for e in services.audit(action_id)
    ]


def apply_change(services: Services) -> None:
    """The Apply button's callback: runs before the page renders, so the table shows the
    new state and the outcomes survive the rerun."""
    state = st.session_state
    state.pop("actions_outcomes", None)
    state.pop("actions_problem", None)
    reverse = state.get("actions_change") == REVERSE
    amount = Decimal(str(state.get("actions_amount", 0.0))).quantize(Decimal("0.01"))
    try:  # the audit trail names the logged-in user `services` is bound to
        outcomes = services.change_actions(
            list(state.get("actions_selected") or []), reverse=reverse,
            amount=None if reverse else amount,
            reason=state.get("actions_reason"),
        )  # fmt: skip
    except ConnectBatchError as exc:  # "Reason: is required…", as the form labels the field
        state["actions_problem"] = _ui.error_text(exc)
        return
    state["actions_outcomes"] = outcomes
    state["actions_selected"] = []
    if all(o.ok for o in outcomes):  # done: the next change starts from a blank form
        for key, blank in FORM_DEFAULTS.items():
            state[key] = blank


def show_outcomes(outcomes: list[ActionOutcome]) -> None:
    done = [o for o in outcomes if o.ok]
    if done:
        st.success(f"{len(done)} of {len(outcomes)} actions changed: "
                   + "; ".join(f"{o.label} {markdown_text(o.message)}" for o in done))  # fmt: skip
    for failed in (o for o in outcomes if not o.ok):  # a message may quote the reason typed
        st.error(f"{failed.label} was not changed: {markdown_text(failed.message)}")


def picker_actions(page: ActionPage, pool: ActionPage | None) -> dict[int, Action]:
    """The actions the picker offers: those of the page shown and the most recent changeable
    ones of the filters (`pool`), never a locked one; pending first, then newest first. The
    picker filters them by what is typed: id, source key, campaign, amount, status or date."""
    found = {a.id: a for a in [*page.actions, *(pool.actions if pool else [])] if not page.is_locked(a)}
    ordered = sorted(
        found.values(), key=lambda a: (a.status is not ActionStatus.PENDING, -a.event_date.timestamp(), -a.id)
    )
    return {a.id: a for a in ordered}


def change_form(services: Services, page: ActionPage, pool: ActionPage | None = None) -> None:
    st.subheader("Change actions")
    on_page = {a.id for a in page.actions if not page.is_locked(a)}
    changeable = picker_actions(page, pool)
    # Selections from another page or filter are dropped before the widget is drawn.
    st.session_state["actions_selected"] = [
        i for i in st.session_state.get("actions_selected", []) if i in changeable
    ]
    locked = len(page.actions) - len(on_page)  # this page only: the picker offers more
    if locked:
        st.caption(f"{locked} locked action(s) on this page are read-only and cannot be selected.")
    nothing = not changeable
    pick, everything = st.columns([5, 1], vertical_alignment="bottom")
    pick.multiselect(
        "Actions to change", list(changeable), key="actions_selected", disabled=nothing,
        format_func=lambda i: _describe(changeable[i]),
        placeholder="Type an id, source key, campaign or amount",
        help="Pending and most recent actions first. Select all takes the actions of the page shown.",
    )  # fmt: skip
    everything.button(
        "Select all", key="actions_select_all", disabled=nothing,
        on_click=lambda: st.session_state.update(actions_selected=[i for i in changeable if i in on_page]),
    )  # fmt: skip
    kind = st.radio("Change", [MODIFY, REVERSE], key="actions_change", horizontal=True, disabled=nothing)
    cols = st.columns([1, 3])
    cols[0].number_input(
        "New amount", min_value=0.0, step=0.01, format="%.2f", key="actions_amount",
        disabled=nothing or kind == REVERSE,
    )  # fmt: skip
    cols[1].text_input(
        "Reason" + (" (required)" if kind == REVERSE else ""), key="actions_reason", disabled=nothing
    )
    st.button("Apply", key="actions_apply", type="primary", disabled=nothing,
              on_click=apply_change, args=(services,))  # fmt: skip


def _describe(a: Action) -> str:
    """What the pickers show and search in: id, source key, campaign, amount, status, date."""
    campaign = f"campaign {a.campaign_id}" if a.campaign_id is not None else "no campaign"
    when = f"{a.event_date:%Y-%m-%d}"
    return f"{a.label} · {visible(a.source_key)} · {campaign} · {a.amount_text} · {a.status.value} · {when}"


def show_audit(services: Services, page: ActionPage) -> None:
    st.subheader("Audit trail")
    by_id = {a.id: a for a in page.actions}
    chosen = st.selectbox(
        "Action", list(by_id), key="actions_detail", index=None,
        format_func=lambda i: _describe(by_id[i]), placeholder="Choose an action on this page",
    )  # fmt: skip
    if chosen is None:
        return
    action = by_id[chosen]
    if page.is_locked(action):
        st.info(f"{action.label} is locked since {action.lock_at:%Y-%m-%d %H:%M} UTC: it is read-only.")
    else:
        st.caption(f"{action.label} locks on {action.lock_at:%Y-%m-%d %H:%M} UTC "
                   f"({page.days_to_lock(action):.1f} days from now).")  # fmt: skip
    trail = audit_rows(services, action.id)
    if trail:
        when = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")
        st.dataframe(trail, hide_index=True, column_config={"When": when, "Effective": when})
    else:
        st.caption("No changes yet: the amount is the one the file carried.")


def partner_filter(services: Services) -> tuple[dict[int, str], tuple[int, ...]]:
    """The partner filter: (each connection's partner name, the partner ids chosen)."""
    chosen = _partner_filter.choose(services.partner_choices(), "actions_partners")
    return services.connection_partners(), chosen


def render() -> None:
    st.title("Pending actions")
    st.caption("Modify or reverse actions until their lock period ends; every change is audited.")
    services = webapp.services()
    state = st.session_state
    if "actions_problem" in state:
        st.error(markdown_text(state.pop("actions_problem")))
    if "actions_outcomes" in state:
        show_outcomes(state.pop("actions_outcomes"))

    try:
        names = {c.id: c.name for c in services.connections()}
    except ConnectBatchError as exc:
        _ui.show_error("Reading the connections", exc)
        return
    cols = st.columns([2, 2, 2])
    connection = cols[0].selectbox(
        "Connection", [ALL, *sorted(names.values())], format_func=visible, key="actions_connection"
    )
    statuses = cols[1].multiselect("Status", STATUSES, key="actions_status", placeholder="All statuses")
    search = cols[2].text_input("Search", key="actions_search", placeholder="Action id or source key")
    owners, chosen_partners = partner_filter(services)
    size = st.session_state.get("actions_page_size", 50)
    number = st.session_state.get("actions_page", 1)
    try:
        page = services.find_actions(
            None if connection == ALL else connection, tuple(statuses), search, page=number, page_size=size,
            partners=chosen_partners,
        )  # fmt: skip
        if page.total and not page.actions:  # fewer pages than before: back to the first
            page = services.find_actions(
                None if connection == ALL else connection, tuple(statuses), search, page_size=size,
                partners=chosen_partners,
            )  # fmt: skip
            number = 1
    except ConnectBatchError as exc:  # a search or filter refused, in words, shown as text
        _ui.show_error("Reading the actions", exc)
        return
    if not page.total:
        filtered = bool(statuses or search or connection != ALL or chosen_partners)
        st.info("No actions match these filters." if filtered else
                "No actions yet: loading call conversions or conversions creates them.")  # fmt: skip
        return

    st.dataframe(
        table_rows(page, names, owners), hide_index=True,
        column_config={
            "Amount": st.column_config.NumberColumn(format="%.2f"),
            "Original amount": st.column_config.NumberColumn(format="%.2f"),
            "Locked": st.column_config.CheckboxColumn(help="Locked actions are read-only"),
            "Days to lock": st.column_config.NumberColumn(format="%.1f"),
        },
    )  # fmt: skip
    size_col, page_col = st.columns([1, 4])
    size_col.selectbox("Rows per page", PAGE_SIZES, index=1, key="actions_page_size")
    with page_col:
        st.pagination(max(1, -(-page.total // size)), default=1, key="actions_page")
    first = (number - 1) * size
    st.caption(f"Actions {first + 1:,}–{first + len(page.actions):,} of {page.total:,}, newest first.")

    try:  # the picker's wider choice: changeable actions of these filters beyond this page
        pool = services.find_actions(
            None if connection == ALL else connection,
            tuple(statuses) or (ActionStatus.PENDING.value, ActionStatus.MODIFIED.value),
            search, page_size=PICKER_SIZE, partners=chosen_partners,
        )  # fmt: skip
    except ConnectBatchError:
        pool = None
    change_form(services, page, pool)
    show_audit(services, page)


if __name__ == "__main__":
    render()
