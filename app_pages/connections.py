"""Connections: the list of connections with status and Last Active, filters, search by name,
Run now, and Create Connection (the Connections screen of the seed).

Run now is a request stored by the button's callback and carried out at the top of the next
script run, inside `st.status`, so the table below already shows the run's outcome.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import streamlit as st

from app_pages import _ui
from connectbatch import webapp
from connectbatch.errors import RunInProgressError
from connectbatch.escaping import markdown_text
from connectbatch.models import (
    METHOD_LABELS,
    METHODOLOGY_LABELS,
    Connection,
    ConnectionStatus,
    Direction,
    Method,
    Run,
    RunStatus,
)
from connectbatch.services import Services

RUN_REQUEST = "run_request"
COLUMN_WIDTHS = [2.4, 1.5, 0.9, 0.8, 1.1, 1.3, 3.6]
HEADERS = ["Name", "Type", "Direction", "Method", "Status", "Last Active", "Actions"]


def request_run(connection_id: int) -> None:
    st.session_state[RUN_REQUEST] = connection_id


def filtered(
    connections: list[Connection],
    *,
    types: list[str],
    directions: list[str],
    methods: list[str],
    statuses: list[str],
    search: str,
    held: Collection[int] = (),
) -> list[Connection]:
    """The connections the filters keep; an empty filter keeps everything. A status chosen
    keeps the connections that show it, and Needs review those with a batch awaiting review:
    the status says so, or `held` (ids of connections with a held run) does."""
    needle = search.strip().lower()
    review = str(ConnectionStatus.NEEDS_REVIEW) in statuses
    return [
        c
        for c in connections
        if (not types or c.data_type in types)
        and (not directions or str(c.direction) in directions)
        and (not methods or str(c.method) in methods)
        and (
            not statuses
            or str(c.status.shown) in statuses
            or str(c.status) in statuses
            or (review and c.id in held)
        )
        and (not needle or needle in c.name.lower())
    ]


def awaiting_review(c: Connection, held: Mapping[int, int] | None) -> bool:
    """Whether `c` has a batch held for review. A later run that failed sets the status to
    Failed while the held batch still waits (Failed outranks it), and the list then showed
    no "Needs review" at all: the held runs say it too."""
    return c.status is ConnectionStatus.NEEDS_REVIEW or c.id in (held or {})


def run_message(connection: Connection, run: Run) -> tuple[str, str]:
    """(kind, sentence) describing a finished run (Markdown: the name and reason escaped)."""
    name, reason = markdown_text(connection.name), markdown_text(run.reason or "no reason given")
    counts = (
        f"{run.files_seen:,} file(s) seen, {run.files_loaded:,} loaded; "
        f"{run.rows_accepted:,} rows accepted, {run.rows_rejected:,} rejected, "
        f"{run.rows_duplicate:,} duplicates"
    )
    if run.status is RunStatus.FAILED:
        return "error", f"Run {run.id} of {name} failed: {reason}"
    if run.status is RunStatus.IN_PROGRESS:
        return "info", f"Run {run.id} of {name} is still in progress."
    if run.status is RunStatus.NEEDS_REVIEW:
        return "warning", (
            f"Run {run.id} of {name} needs review: the batch is held on the Validation "
            f"page until a reviewer releases or discards it ({reason})."
        )
    return "success", f"Run {run.id} of {name} completed: {counts}."


def not_runnable(connection: Connection) -> str:
    """Why Run now does nothing for a push or outbound connection, in the user's words."""
    name = markdown_text(connection.name)
    if connection.direction is Direction.OUTBOUND:
        return (
            f"{name} is collected by the partner (Pull from us): its exports are "
            "written on the connection's schedule and the partner picks them up from our server."
        )
    if connection.method is Method.EMAIL:
        return (
            f"{name} is Push to us: files arrive by themselves when the partner "
            "e-mails them to the connection's address; there is nothing to run."
        )
    return (
        f"{name} is Push to us: files arrive by themselves when the partner uploads "
        f"them to our {METHOD_LABELS[connection.method]} server; there is nothing to run."
    )


def carry_out_run_request(connections: list[Connection]) -> bool:
    """Run the connection whose Run now was pressed; True when a run was attempted."""
    connection_id = st.session_state.pop(RUN_REQUEST, None)
    if connection_id is None:
        return False
    connection = next((c for c in connections if c.id == connection_id), None)
    if connection is None:
        st.warning("That connection no longer exists.")
        return False
    if not _ui.is_pull(connection):
        st.info(not_runnable(connection))
        return False
    where = markdown_text(f"{connection.host}{f':{connection.port}' if connection.port else ''}")
    name = markdown_text(connection.name)
    # The outcome goes below the status box, so it stays readable when the box collapses.
    failure: Exception | None = None
    run: Run | None = None
    with st.status(f"Running {name}: connecting to {where}…", expanded=False) as status:
        try:
            # The role is checked by the user's services; the engine runs it under its lock.
            run = webapp.engine()[0].run_now(webapp.services().connection_to_pull(connection.id).id)
        except Exception as exc:
            failure = exc
        if run is None:
            status.update(label=f"{name} could not run", state="error")
        else:
            status.update(
                label=f"Run {run.id} of {name}: {run.status}",
                state="error" if run.status is RunStatus.FAILED else "complete",
            )
    if isinstance(failure, RunInProgressError):
        st.warning(f"{markdown_text(str(failure))}. Wait for it to finish, then look at its history.")
    elif failure is not None:
        _ui.show_error("Run now", failure)
    elif run is not None:
        kind, text = run_message(connection, run)
        {"error": st.error, "success": st.success, "warning": st.warning}.get(kind, st.info)(text)
        if run.status is RunStatus.NEEDS_REVIEW:
            _ui.review_link(run.id, f"Review run {run.id}")
    return True


def filters(connections: list[Connection], held: Mapping[int, int] | None = None) -> list[Connection]:
    left, *rest = st.columns([2.2, 1.4, 1.2, 1.2, 1.4])
    search = left.text_input("Search by name", key="search", placeholder="Name contains…")
    types = sorted({c.data_type for c in connections})
    chosen_types = rest[0].multiselect(
        "Type", types, format_func=_ui.data_type_label, key="filter_type", placeholder="All"
    )
    directions = rest[1].multiselect(
        "Direction",
        [str(d) for d in Direction],
        format_func=lambda d: _ui.DIRECTION_LABELS[Direction(d)],
        key="filter_direction",
        placeholder="All",
    )
    methods = rest[2].multiselect(
        "Method",
        [str(m) for m in Method],
        format_func=lambda m: METHOD_LABELS[Method(m)],
        key="filter_method",
        placeholder="All",
    )
    statuses = rest[3].multiselect(
        "Status", [str(s) for s in ConnectionStatus], key="filter_status", placeholder="All"
    )
    return filtered(
        connections,
        types=chosen_types,
        directions=directions,
        methods=methods,
        statuses=statuses,
        search=search or "",
        held=held or {},
    )


def held_runs(services: Services) -> dict[int, int]:
    """connection id -> its newest run awaiting review, for the "Needs review" links."""
    held: dict[int, int] = {}
    for run in services.quarantined():  # newest first
        held.setdefault(run.connection_id, run.id)
    return held


# The list's layout rules: a word never breaks inside itself, except in the names (a name or
# partner of 100 letters without a space widened its column past the page and pushed the
# other cells onto a second line), and on a narrow screen, where
# Streamlit stacks a row's columns, the header row is hidden and every cell shows its label.
# From 641 px every column of the header and of every row has the same floor (COLUMN_FLOORS,
# wide enough for the longest word it shows), so all rows keep one set of column edges; from
# 1200 px the cells never wrap onto a second line. Before, each column's floor was its own
# content's width: at 1280 px the header's floors added up past the page, so "Actions" went
# to a line of its own, and rows wrapped or not depending on their words.
COLUMN_FLOORS = ["6rem", "6.75rem", "4.75rem", "3.75rem", "5.75rem", "5.75rem", "8rem"]
_CELLS = '.st-key-list_header {0}, [class*="st-key-row_"] {0}'
_COLUMN = '[data-testid="stColumn"]'
_ROW = '[data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"])'
LIST_STYLE = (
    "<style>\n"
    + _CELLS.format("p")
    + " { overflow-wrap: normal; word-break: keep-all; hyphens: none; }\n"
    + _CELLS.format(_COLUMN)
    + " { min-width: min-content; }\n"
    + '[class*="st-key-row_"] [data-testid="stColumn"]:first-child p { overflow-wrap: anywhere; }\n'
    + ".st-key-list_header p { white-space: nowrap; }\n"
    # The "Needs review" link under a name wraps in the narrow Name column ("Needs revi…").
    + _CELLS.format('[data-testid="stPageLink-NavLink"] > span:last-child')
    + ", "
    + _CELLS.format('[data-testid="stPageLink-NavLink"] p')
    + " { white-space: normal; overflow: visible; text-overflow: clip; }\n"
    + "@media (min-width: 641px) {\n"
    + "".join(
        _CELLS.format(f"{_COLUMN}:nth-child({i})") + f" {{ min-width: {floor}; }}\n"
        for i, floor in enumerate(COLUMN_FLOORS, start=1)
    )
    + "}\n@media (min-width: 1200px) { "
    + _CELLS.format(_ROW)
    + " { flex-wrap: nowrap; } }\n"
    + ".cb-cell-label { display: none; }\n"
    + "@media (max-width: 640px) {\n"
    + "  .st-key-list_header { display: none; }\n"
    + "  .cb-cell-label { display: inline; color: rgba(49, 51, 63, 0.6); font-size: 0.875rem; }\n"
    + '  .cb-cell-label::after { content: ": "; }\n'
    + "}\n</style>\n"
)


def labelled(label: str, value: str) -> str:
    """A cell's Markdown with its column's label in front, shown only on a narrow screen.
    `value` must be our own text (labels, badges, ages), never a partner's."""
    return f'<span class="cb-cell-label">{label}</span>{value}'


def table(connections: list[Connection], held: dict[int, int] | None = None) -> None:
    st.html(LIST_STYLE)
    with st.container(key="list_header"):
        header = st.columns(COLUMN_WIDTHS, vertical_alignment="bottom")
        for column, text in zip(header, HEADERS, strict=True):
            column.markdown(f"**{text}**")
    partners = webapp.services().partner_names()
    for c in connections:
        with st.container(border=True, key=f"row_{c.id}"):
            cells = st.columns(COLUMN_WIDTHS, vertical_alignment="center")
            cells[0].markdown(f"**{markdown_text(c.name)}**  \n{METHODOLOGY_LABELS[c.methodology]}")
            if c.partner_id in partners:
                cells[0].caption(f"Partner: {markdown_text(partners[c.partner_id])}")
            if awaiting_review(c, held):
                # Under the name, the row's widest cell: in the narrow Status cell the link
                # widened its column (min-content) and pushed Actions onto a second line.
                with cells[0]:
                    _ui.review_link((held or {}).get(c.id))
            cells[1].markdown(labelled("Type", _ui.data_type_label(c.data_type)), unsafe_allow_html=True)
            cells[2].markdown(
                labelled("Direction", _ui.DIRECTION_LABELS[c.direction]), unsafe_allow_html=True
            )
            cells[3].markdown(labelled("Method", METHOD_LABELS[c.method]), unsafe_allow_html=True)
            cells[4].markdown(labelled("Status", _ui.badge(str(c.status.shown))), unsafe_allow_html=True)
            cells[5].markdown(
                labelled("Last Active", _ui.ago(c.last_active)),
                help=_ui.when(c.last_active) if c.last_active else None,
                unsafe_allow_html=True,
            )
            with cells[6], st.container(horizontal=True, gap="small"):
                if st.button("Edit", key=f"edit_{c.id}", type="tertiary", icon=":material/edit:"):
                    _ui.open_detail(c.id, "Edit")
                if st.button(
                    "View History", key=f"history_{c.id}", type="tertiary", icon=":material/history:"
                ):
                    _ui.open_detail(c.id, "History")
                # Only a pull from the partner's server can be started by hand: push files
                # arrive by themselves and outbound exports are collected by the partner.
                if _ui.is_pull(c):
                    st.button(
                        "Run now",
                        key=f"run_{c.id}",
                        type="tertiary",
                        icon=":material/play_arrow:",
                        on_click=request_run,
                        args=(c.id,),
                    )


def render() -> None:
    # One row where the title takes what the button leaves: in st.columns([5, 1]) the button
    # got a sixth of the width and cut its label ("Create Connec…") below ~1500 px.
    with st.container(horizontal=True, vertical_alignment="bottom"):
        st.title("Connections", width="stretch")
        if st.button(
            "Create Connection",
            key="create_connection",
            type="primary",
            icon=":material/add:",
            width="content",
        ):
            st.switch_page(_ui.WIZARD_PAGE)
    st.caption(
        "Batch file transfers with partners: what each connection carries, how, and how its latest run went."
    )
    _ui.show_flash()
    _ui.delivery_banner()  # late, missing, drifting files of every connection
    services = webapp.services()
    ok, connections = _ui.safely("Loading connections", services.connections)
    if not ok or connections is None:
        return
    if carry_out_run_request(connections):  # the run changed its connection's status
        ok, fresh = _ui.safely("Loading connections", services.connections)
        connections = fresh if ok and fresh is not None else connections
    if not connections:
        st.info("No connections yet. Select **Create Connection** to set up the first one.")
        return
    ok, held = _ui.safely("Loading the runs awaiting review", lambda: held_runs(services))
    held = held if ok else None
    shown = filters(connections, held)
    st.caption(f"{len(shown)} of {len(connections)} connections")
    if not shown:
        st.info("No connection matches these filters.")
        return
    table(shown, held)


if __name__ == "__main__":
    render()
