"""Triage: the data-quality reviewer's deadlines.

Everything that will lock in the next N days and still needs a person (quarantined batches,
reject spikes, refused change requests, actions of connections whose last file failed), grouped
by partner and ordered by time left (connectbatch/triage.py has the rules). Each item has its
one action: a held batch is released or discarded here, with one click (the note names the
screen and the deadline; the reviewer's name is kept with the run); the others link to the page
where a person acts on them.

Streamlit runs a page with `__name__ == "__main__"`; the UI is built only then.
"""

from __future__ import annotations

import logging

import streamlit as st

from app_pages import _partner_filter
from connectbatch import triage, webapp
from connectbatch.errors import ConnectBatchError
from connectbatch.escaping import markdown_text
from connectbatch.triage import Triage, TriageItem, TriageKind

log = logging.getLogger(__name__)

DAYS_KEY = "triage_days"
PARTNERS_KEY = "triage_partners"
OUTCOME_KEY = "triage_outcome"  # (kind, message) of the last one-click decision
VALIDATION_PAGE = "app_pages/validation.py"
ACTIONS_PAGE = "app_pages/actions.py"
DETAIL_PAGE = "app_pages/connection_detail.py"

_plain = markdown_text  # partner text shown literally: control characters escaped, no Markdown or LaTeX


# ------------------------------------------------------------------ one-click decisions
# Button callbacks: they run before the page re-renders, so the item is gone when it shows.


_DONE = {"release": "released", "discard": "discarded"}


def _decide(action: str, item: TriageItem) -> None:
    run_id = item.run_id
    assert run_id is not None
    note = f"{_DONE[action]} from the triage screen (lock deadline {item.deadline:%Y-%m-%d %H:%M} UTC)"
    try:
        svc = webapp.services()  # bound to the logged-in user, whose name is kept with the run
        if action == "release":
            done = svc.release(run_id, note)
            message = (
                f"Run {run_id} released by {svc.actor()}: {done.rows_accepted:,} rows loaded, "
                f"{done.actions_created:,} pending actions created."
            )
        else:
            svc.discard(run_id, note)
            message = f"Run {run_id} discarded by {svc.actor()}: the held rows were dropped."
    except ConnectBatchError as exc:
        st.session_state[OUTCOME_KEY] = ("error", f"Run {run_id} was not {_DONE[action]}: {exc}")
        return
    except Exception as exc:  # a bug: a message here, the traceback in the log
        log.exception("%s of run %s from triage failed", action, run_id)
        st.session_state[OUTCOME_KEY] = (
            "error",
            f"Run {run_id} was not {_DONE[action]}: unexpected {type(exc).__name__}: {exc}",
        )
        return
    st.session_state[OUTCOME_KEY] = ("success", message)


def _show_outcome() -> None:
    found = st.session_state.pop(OUTCOME_KEY, None)
    if found:
        kind, message = found
        (st.success if kind == "success" else st.error)(_plain(message))  # errors quote names


# ------------------------------------------------------------------ items


def _act(item: TriageItem, where: st.delta_generator.DeltaGenerator) -> None:
    """The item's one action."""
    if item.kind is TriageKind.QUARANTINED:
        left, right = where.columns(2)
        left.button("Release", key=f"triage_release_{item.run_id}", type="primary", on_click=_decide,
                    args=("release", item), help="Load the held rows as they are")  # fmt: skip
        right.button("Discard", key=f"triage_discard_{item.run_id}", on_click=_decide,
                     args=("discard", item), help="Drop the held rows; the partner can resend")  # fmt: skip
        where.page_link(VALIDATION_PAGE, label="Review first", icon=":material/rule:",
                        query_params={"run": str(item.run_id)})  # fmt: skip
    elif item.kind is TriageKind.REJECT_SPIKE:
        where.page_link(VALIDATION_PAGE, label="Open the rejects", icon=":material/rule:",
                        query_params={"run": str(item.run_id)})  # fmt: skip
    elif item.kind is TriageKind.REFUSED_CHANGE:
        where.page_link(ACTIONS_PAGE, label=f"Modify or reverse A-{item.action_id or 0:06d}",
                        icon=":material/pending_actions:",
                        help="On Pending actions (Partner manager role): search for the id")  # fmt: skip
    elif item.resend:  # the file was refused for its content: a retry fails the same way
        where.page_link(DETAIL_PAGE, label="Open the connection (the partner resends)",
                        icon=":material/cable:", query_params={"connection": str(item.connection_id)},
                        help="The partner fixes the file and sends it again (see the history); or map "
                             "its columns on the connection (Mapping), then retry")  # fmt: skip
    else:
        where.page_link(DETAIL_PAGE, label="Open the connection (retry)", icon=":material/cable:",
                        query_params={"connection": str(item.connection_id)},
                        help="Retry the failed run or fix the connection (the Analyst role)")  # fmt: skip


# An item's action link wraps in its column: "Open the connection (the partner resends)" was
# cut to "Open the connection (the partne…" at 1280 and 1440 px.
ITEM_STYLE = """
<style>
[class*="st-key-triage_item_"] [data-testid="stPageLink-NavLink"] > span:last-child,
[class*="st-key-triage_item_"] [data-testid="stPageLink-NavLink"] p {
  white-space: normal; overflow: visible; text-overflow: clip;
}
</style>
"""


def _show_item(item: TriageItem, found: Triage) -> None:
    with st.container(border=True, key=f"triage_item_{item.kind}_{item.run_id}_{item.action_id}"):
        when, what, act = st.columns([2, 5, 3])
        late = item.deadline <= found.now
        when.markdown(f"**{'⚠️ ' if late else ''}{triage.time_left_text(item.deadline, found.now)}**")
        when.caption(f"locks {item.deadline:%Y-%m-%d %H:%M} UTC")
        what.markdown(f"**{item.label}** · {_plain(item.connection)}")
        what.caption(_plain(item.detail) + (" Released now, its actions are created LOCKED." if late else ""))
        _act(item, act)


def _show(found: Triage) -> None:
    kinds = [i.kind for i in found.items]
    cols = st.columns(5)
    cols[0].metric("Needs a person", len(kinds))
    for col, kind in zip(cols[1:], TriageKind, strict=True):
        col.metric(triage.KIND_LABELS[kind], kinds.count(kind))
    if not found.groups:
        st.success(f"Nothing that needs a person locks within {found.days} days.")
        return
    st.html(ITEM_STYLE)
    for group in found.groups:
        st.subheader(f"{_plain(group.partner)} · {len(group.items)}")
        for item in group.items:
            _show_item(item, found)


def render() -> None:
    st.title("Triage")
    st.caption(
        "What locks in the next days and still needs a person, by partner, most urgent first. "
        "An action locks its connection's lock period after its event; after that nothing "
        "changes it."
    )
    _show_outcome()
    try:
        svc = webapp.services()
        left, right = st.columns([1, 3])
        days = left.number_input("Locks within (days)", min_value=1, max_value=triage.MAX_DAYS,
                                 value=triage.DEFAULT_DAYS, step=1, key=DAYS_KEY)  # fmt: skip
        partners = _partner_filter.choose(svc.partner_choices(), PARTNERS_KEY, right)
        _show(svc.triage(int(days), partners))
    except ConnectBatchError as exc:
        st.error(f"The triage cannot be shown: {_plain(str(exc))}")
    except Exception as exc:  # a bug: a message here, the traceback in the log
        log.exception("triage page failed")
        st.error(f"The triage cannot be shown: unexpected {_plain(f'{type(exc).__name__}: {exc}')}")


if __name__ == "__main__":
    render()
