"""The data browser: one page body for every data type with a `BrowseSpec` (clicks, product
catalogs), as app_pages/call_data.py is for call conversions.

Filters (days, connection, the type's own id and coded columns, an amount range, a search)
drive counts, two charts, a paged table and a CSV download. DuckDB does every aggregation
(connectbatch/store/browse.py); this module only turns widgets into a `BrowseFilter` and
shows the small results it gets back. Partner text is shown through escaping.visible.
"""

from __future__ import annotations

import functools
import tempfile
from decimal import Decimal, InvalidOperation
from pathlib import Path

import streamlit as st

from app_pages import _charts, _filters, _partner_filter
from connectbatch import browse, webapp
from connectbatch.browse import LOADED_AT, BrowseFilter, BrowseOptions, BrowseSpec, BrowseSummary, Kpi
from connectbatch.errors import ConnectBatchError
from connectbatch.escaping import markdown_text, visible
from connectbatch.services import Services

PAGE_SIZES = (25, 50, 100, 250)


def amount(value: float | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise _filters.FilterProblem(f"{value!r} is not an amount") from None


def label(column: str) -> str:
    """A column name as a filter label: "MediaId" -> "Media id"."""
    words: list[str] = []
    for ch in column:
        if ch.isupper() and words and not words[-1].endswith(" "):
            words.append(" ")
        words.append(ch.lower() if words else ch)
    return "".join(words).replace("  ", " ")


def filters(spec: BrowseSpec, options: BrowseOptions) -> BrowseFilter:
    """The filter widgets; raises _filters.FilterProblem for a value that cannot be used."""
    key = spec.data_type
    top = st.columns([2, 2, 2, 2])
    days_label = "Loaded on (UTC)" if spec.date_column == LOADED_AT else "Event days (UTC)"
    days = top[0].date_input(days_label, value=(options.first_day, options.last_day), key=f"{key}_dates")
    names = dict(options.connections)
    connections = top[1].multiselect(
        "Connection", list(names), key=f"{key}_connections", placeholder="All connections",
        format_func=lambda i: visible(names.get(i, str(i))),
    )  # fmt: skip
    partners = _partner_filter.choose(options.partners, f"{key}_partners", top[3])
    searched = ", ".join(spec.search_columns)
    text = top[2].text_input("Search", key=f"{key}_search", placeholder=searched, help=f"Part of {searched}")
    values: dict[str, tuple[str | int, ...]] = {}
    columns = spec.filter_columns()
    listed = f"The {options.option_limit:,} busiest are listed; type any other id."
    for i in range(0, len(columns), 4):
        row = st.columns(4)
        for slot, column in zip(row, columns[i : i + 4], strict=False):
            offered = options.values.get(column, [])
            if column in spec.id_filters:
                chosen = slot.multiselect(
                    label(column), offered, key=f"{key}_{column}", accept_new_options=True,
                    placeholder="All", help=listed,
                    format_func=functools.partial(media_text, options.media_names)
                    if column == "MediaId" else str,
                )  # fmt: skip
                values[column] = _filters.ids(chosen, label(column))
            else:
                chosen = slot.multiselect(
                    label(column), offered, key=f"{key}_{column}", placeholder="All",
                    format_func=lambda v: visible(str(v)),
                )  # fmt: skip
                values[column] = tuple(str(v) for v in chosen)
    low = high = None
    if spec.range_column is not None:
        left, right, _ = st.columns([1, 1, 2])
        low = amount(left.number_input(f"{label(spec.range_column)} from", min_value=0.0, value=None,
                                       step=1.0, key=f"{key}_low"))  # fmt: skip
        high = amount(right.number_input(f"{label(spec.range_column)} up to", min_value=0.0, value=None,
                                         step=1.0, key=f"{key}_high"))  # fmt: skip
    chosen_days = tuple(d for d in (days if isinstance(days, tuple) else (days,)) if d is not None)
    return BrowseFilter(
        start=chosen_days[0] if chosen_days else None,
        end=chosen_days[-1] if len(chosen_days) > 1 else None,
        connections=tuple(int(c) for c in connections),
        values={c: v for c, v in values.items() if v},
        low=low, high=high, text=text.strip() or None, partners=partners,
    )  # fmt: skip


def media_text(names: dict[int, str], media_id: object) -> str:
    """A MediaId option: "Leadwave Media (98765)" where a partner has it; typed text as is."""
    try:
        number = int(str(media_id).strip())
    except ValueError:
        return visible(str(media_id))
    return visible(f"{names[number]} ({number})" if number in names else str(number))


def kpi_text(kpi: Kpi, value: int | float | Decimal | None) -> str:
    if value is None:  # no single value: the tile's help says why
        return "—"
    if kpi.money:
        return f"{Decimal(value):,.2f}"
    if isinstance(value, float):
        return f"{value:.1%}"
    return f"{value:,}"


def show_summary(spec: BrowseSpec, summary: BrowseSummary) -> None:
    cols = st.columns(max(1, len(summary.kpis)))
    for col, (kpi, value) in zip(cols, summary.kpis, strict=True):
        col.metric(kpi.label, kpi_text(kpi, value), help=kpi.help or None)
    if summary.rows == 0:
        return
    left, right = st.columns(2)
    with left:
        st.markdown(f"**{spec.title} per day**" if spec.date_column != LOADED_AT else "**Loaded per day**")
        _charts.draw(_charts.bars(summary.per_day, "day", "rows", value_title=spec.title, temporal=True))
    if spec.breakdown is not None:
        with right:
            st.markdown(f"**Top {label(spec.breakdown).lower()} values**")
            top = browse.visible_table(summary.top)
            _charts.draw(_charts.bars(top, "value", "rows", horizontal=True, most_first=True))


def show_table(services: Services, spec: BrowseSpec, flt: BrowseFilter, total: int) -> None:
    key = spec.data_type
    st.subheader(spec.title)
    size_col, page_col = st.columns([1, 4])
    size = size_col.selectbox("Rows per page", PAGE_SIZES, index=1, key=f"{key}_page_size")
    pages = max(1, -(-total // size))
    with page_col:
        page = st.pagination(pages, key=f"{key}_page")
    rows = services.browse_rows(spec.data_type, flt, page=page, page_size=size)
    first = (page - 1) * size
    st.caption(f"Rows {first + 1:,}–{first + rows.num_rows:,} of {total:,}, newest first.")
    st.dataframe(browse.visible_table(rows), hide_index=True)


def csv_bytes(services: Services, data_type: str, flt: BrowseFilter) -> bytes:
    """The download: DuckDB writes the CSV to a temporary file, which is read once."""
    with tempfile.TemporaryDirectory(prefix="cb-browse-") as tmp:
        target = Path(tmp) / "rows.csv"
        services.export_browse_csv(data_type, flt, target)
        return target.read_bytes()


def render(data_type: str) -> None:
    spec = browse.spec(data_type)
    st.title(spec.title)
    st.caption(f"{spec.dtype.label} from every {spec.dtype.label.lower()} connection. "
               "The filters apply to everything below.")  # fmt: skip
    services = webapp.services()
    try:
        options = services.browse_options(data_type)
    except ConnectBatchError as exc:
        st.error(f"The {spec.noun} cannot be read: {markdown_text(str(exc))}")
        return
    if options.is_empty:
        st.info(f"No {spec.dtype.label.lower()} have been loaded yet. They appear here once a "
                f"{spec.dtype.label.lower()} connection has received a file.")  # fmt: skip
        return
    try:
        flt = filters(spec, options)
        summary = services.browse_summary(data_type, flt)
    except (_filters.FilterProblem, ConnectBatchError) as exc:
        st.error(markdown_text(str(exc)))  # it quotes what was typed
        return
    show_summary(spec, summary)
    if summary.rows == 0:
        st.info(f"No {spec.noun} match these filters.")
        return
    try:
        show_table(services, spec, flt, summary.rows)
    except ConnectBatchError as exc:
        st.error(f"The {spec.noun} cannot be listed: {markdown_text(str(exc))}")
    st.download_button(
        f"Download the {summary.rows:,} filtered {spec.noun} as CSV",
        data=functools.partial(csv_bytes, services, data_type, flt),
        file_name=f"{spec.url_path}.csv",
        mime="text/csv",
        key=f"{data_type}_download",
        on_click="ignore",
        icon=":material/download:",
    )
