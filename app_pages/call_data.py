"""Call data: the explorer over ingested call conversions for partner managers.

Filters (event days, campaign, media partner, call status, provider, caller country, the
partner whose connection delivered the calls) drive
KPIs, three charts, a paged table and a CSV download. DuckDB does every aggregation (see
connectbatch/store/calls.py); this page only turns widgets into a `CallFilter` and shows
the small results it gets back from the services.
"""

from __future__ import annotations

import functools
import logging
import tempfile
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import streamlit as st

from app_pages import _charts, _filters, _partner_filter
from connectbatch import webapp
from connectbatch.browse import visible_table
from connectbatch.errors import ConnectBatchError
from connectbatch.escaping import markdown_text, visible
from connectbatch.explorer import CallFilter, CallFilterOptions, CallKpis, CallSummary, DurationColumn
from connectbatch.services import Services

log = logging.getLogger(__name__)

PAGE_SIZES = (25, 50, 100, 250)
DURATIONS: dict[str, DurationColumn] = {"Call duration": "CallDuration", "Talk duration": "TalkDuration"}


# The explorer's read models, shared by every session of the process and keyed by the data
# folder, the reader's role and `call_data_version()` (which moves with every ingest, supersede,
# partner or MediaId change), so a new run shows at once and nothing stale is ever served.
# The services object is not part of the key (leading underscore): it only does the reading.


@st.cache_data(show_spinner=False, max_entries=16)
def cached_options(_services: Services, home: str, role: str, version: tuple[int, ...]) -> CallFilterOptions:
    return _services.call_filter_options()


@st.cache_data(show_spinner=False, max_entries=64)
def cached_summary(
    _services: Services,
    home: str,
    role: str,
    version: tuple[int, ...],
    flt: CallFilter,
    duration: DurationColumn,
) -> CallSummary:
    return _services.call_summary(flt, duration)


def read_key(services: Services) -> tuple[str, str, tuple[int, ...]]:
    """(data folder, role, data version): what a cached read is valid for."""
    role = str(services.user.role) if services.user is not None else ""
    return str(services.settings.home), role, services.call_data_version()


def duration_text(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def money(amount: Decimal) -> str:
    """Short enough for a metric tile at 1280 px (nine characters): $1,234.50, $35.2K, $57.98M
    (the exact amount is in the tile's help). From $10,000 it is in thousands: "$35,171.43"
    was cut to "$35,171…" at 1280 px."""
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if amount >= Decimal("999950"):  # not "$1,000.0K"
        return f"{sign}${amount / 1_000_000:,.2f}M"
    if amount >= 10_000:
        return f"{sign}${amount / 1000:,.1f}K"
    return f"{sign}${amount:,.2f}"


def filters(options: CallFilterOptions) -> CallFilter:
    """The filter widgets; raises _filters.FilterProblem for a value that cannot be used."""
    first, last = options.first_day, options.last_day
    top = st.columns([2, 1, 1])
    days = top[0].date_input("Event days (UTC)", value=(first, last), key="calls_dates")
    listed = f"The {options.option_limit:,} busiest are listed; type any other id."
    campaigns = top[1].multiselect(
        "Campaign", options.campaigns, key="calls_campaigns", accept_new_options=True,
        placeholder="All campaigns", help=listed,
    )  # fmt: skip
    media = top[2].multiselect(
        "Media partner (MediaId)", options.media_ids, key="calls_media", accept_new_options=True,
        placeholder="All media partners", help=listed, format_func=lambda m: media_text(options, m),
    )  # fmt: skip
    bottom = st.columns(4)
    statuses = bottom[0].multiselect(
        "Call status", options.statuses, key="calls_statuses", placeholder="All statuses"
    )
    providers = bottom[1].multiselect(
        "Call provider", options.providers, key="calls_providers", placeholder="All providers"
    )
    countries = bottom[2].multiselect(
        "Caller country", options.countries, key="calls_countries", placeholder="All countries"
    )
    partners = _partner_filter.choose(options.partners, "calls_partners", bottom[3])
    chosen = tuple(d for d in (days if isinstance(days, tuple) else (days,)) if d is not None)
    return CallFilter(
        start=chosen[0] if chosen else None,
        end=chosen[-1] if len(chosen) > 1 else None,
        campaigns=_filters.ids(campaigns, "Campaign"),
        media_ids=_filters.ids(media, "Media partner"),
        statuses=tuple(statuses),
        providers=tuple(providers),
        countries=tuple(countries),
        partners=partners,
    )


def media_text(options: CallFilterOptions, media_id: object) -> str:
    """A MediaId option: "Leadwave Media (98765)" where a partner has it; typed text as is."""
    try:
        return visible(options.media_label(int(str(media_id).strip())))
    except ValueError:
        return visible(str(media_id))


def show_kpis(kpis: CallKpis) -> None:
    cols = st.columns(5)
    cols[0].metric("Calls", f"{kpis.calls:,}")
    cols[1].metric("Answered rate", f"{kpis.answered_rate:.1%}", help=f"{kpis.answered:,} answered")
    cols[2].metric("Total talk time", f"{kpis.talk_seconds / 3600:,.1f} h")
    cols[3].metric("Average talk time", duration_text(kpis.average_talk_seconds), help="per call")
    cols[4].metric(
        "Sale amount", money(kpis.sale_amount), help=f"${kpis.sale_amount:,.2f} from {kpis.sales:,} sales"
    )


def show_charts(summary: CallSummary) -> None:
    left, right = st.columns(2)
    with left:
        st.markdown("**Calls per day by status**")
        _charts.draw(_charts.calls_per_day_by_status(summary.per_day))  # every status in the legend
    with right:
        st.markdown("**Top media partners**")
        top = summary.top_media
        partners = pa.table(
            {
                "Media partner": [visible(str(m)) for m in top.column("media_partner").to_pylist()],
                "Calls": top.column("calls"),
            }
        )
        _charts.draw(_charts.top_media(partners))
    st.markdown("**Duration distribution**")
    st.radio("Duration", list(DURATIONS), key="calls_duration", horizontal=True, label_visibility="collapsed")
    _charts.draw(_charts.durations(summary.durations))


# Amounts to the cent, as on the Pending actions page: the grid drops a decimal's trailing
# zeros, so an action of $0.00 read "0" beside "785.58" (and $12.50 would read "12.5").
AMOUNT_COLUMNS = {
    "SaleAmount": st.column_config.NumberColumn(format="%.2f"),
    "ActionAmount": st.column_config.NumberColumn(format="%.2f"),
}


@st.fragment
def show_table(flt: CallFilter, total: int) -> None:
    """The paged table, a fragment: the page size and the pages rerun only this part (one read
    of the rows shown), not the filters, KPIs and charts above, which did not change."""
    st.subheader("Calls")
    size_col, page_col = st.columns([1, 4])
    size = size_col.selectbox("Rows per page", PAGE_SIZES, index=1, key="calls_page_size")
    pages = max(1, -(-total // size))
    with page_col:
        page = st.pagination(pages, key="calls_page")
    try:
        rows = webapp.services().call_rows(flt, page=page, page_size=size)
    except ConnectBatchError as exc:
        st.error(f"The calls cannot be listed: {markdown_text(str(exc))}")
        return
    first = (page - 1) * size
    st.caption(f"Rows {first + 1:,}–{first + rows.num_rows:,} of {total:,}, newest first.")
    st.dataframe(visible_table(rows), hide_index=True, column_config=AMOUNT_COLUMNS)


def csv_bytes(services: Services, flt: CallFilter) -> bytes:
    """The download: DuckDB writes the CSV to a temporary file, which is read once."""
    with tempfile.TemporaryDirectory(prefix="cb-calls-") as tmp:
        target = Path(tmp) / "calls.csv"
        services.export_calls_csv(flt, target)
        return target.read_bytes()


def render() -> None:
    st.title("Call data")
    st.caption("Calls from every call-conversion connection. The filters apply to everything below.")
    services = webapp.services()
    try:
        key = read_key(services)
        options = cached_options(services, *key)
    except ConnectBatchError as exc:
        st.error(f"The call data cannot be read: {markdown_text(str(exc))}")
        return
    if options.is_empty:
        st.info("No call conversions have been loaded yet. They appear here once a call-conversion "
                "connection has received a file.")  # fmt: skip
        return
    try:
        flt = filters(options)
        duration = DURATIONS[st.session_state.get("calls_duration", "Call duration")]
        summary = cached_summary(services, *key, flt, duration)
    except (_filters.FilterProblem, ConnectBatchError) as exc:
        st.error(markdown_text(str(exc)))  # it quotes what was typed
        return
    show_kpis(summary.kpis)
    if summary.kpis.calls == 0:
        st.info("No calls match these filters.")
        return
    show_charts(summary)
    calls, rows = summary.kpis.calls, summary.kpis.rows  # rows: a call's events are rows of their own
    show_table(flt, rows)
    st.download_button(
        f"Download the {calls:,} filtered calls as CSV"
        if rows == calls
        else f"Download the {rows:,} filtered rows ({calls:,} calls) as CSV",
        data=functools.partial(csv_bytes, services, flt),
        file_name="call_data.csv",
        mime="text/csv",
        key="calls_download",
        on_click="ignore",
        icon=":material/download:",
    )


if __name__ == "__main__":
    render()
