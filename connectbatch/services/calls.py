"""The call-data explorer: filter options, KPIs and charts, pages of rows and CSV export,
all aggregated by DuckDB."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pyarrow as pa

from connectbatch.explorer import (
    CallFilter,
    CallFilterOptions,
    CallSummary,
    DurationColumn,
)
from connectbatch.services.base import (
    InvalidInputError,
    ServiceBase,
)
from connectbatch.store import calls as call_store


class CallServices(ServiceBase):
    def call_filter_options(self) -> CallFilterOptions:
        """What the explorer's filters offer: DISTINCT values of the loaded calls."""
        with self.db.connect() as con:
            return call_store.filter_options(con)

    def call_summary(
        self, flt: CallFilter, duration: DurationColumn = "CallDuration", top: int = 10
    ) -> CallSummary:
        """KPIs, calls per day by status, the busiest media partners and the duration
        distribution of the calls a filter selects (all aggregated by DuckDB)."""
        flt = _call_filter(flt)
        if duration not in call_store.DURATION_COLUMNS:
            raise InvalidInputError("duration", f"must be one of {', '.join(call_store.DURATION_COLUMNS)}")
        with self.db.connect() as con:
            return CallSummary(
                kpis=call_store.kpis(con, flt),
                per_day=call_store.per_day(con, flt),
                top_media=call_store.top_media(con, flt, top),
                durations=call_store.durations(con, flt, duration),
            )

    def call_rows(self, flt: CallFilter, page: int = 1, page_size: int = 50) -> pa.Table:
        """One page (from 1) of the calls a filter selects, newest first, with their action."""
        if page < 1:
            raise InvalidInputError("page", "pages are numbered from 1")
        if not 1 <= page_size <= 1000:
            raise InvalidInputError("page_size", "must be between 1 and 1000 rows")
        flt = _call_filter(flt)
        with self.db.connect() as con:
            return call_store.page(con, flt, page_size, (page - 1) * page_size)

    def call_data_version(self) -> tuple[int, ...]:
        """A mark that changes whenever what the explorer reads changes (calls loaded or
        ended, partners and their MediaIds, connection owners): the app caches the filter
        options and summaries under it, so a new ingest shows at once."""
        with self.db.connect() as con:
            return call_store.version(con)

    def export_calls_csv(self, flt: CallFilter, target: Path) -> int:
        """Write every call a filter selects (all columns, then its action) to `target` as
        CSV; returns the number of rows. The file appears complete or not at all."""
        flt = _call_filter(flt)
        target = Path(target)
        tmp = target.with_name("." + target.name + ".tmp")
        try:
            with self.db.connect() as con:
                count = call_store.export_csv(con, flt, tmp)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
        return count


def _call_filter(flt: CallFilter) -> CallFilter:
    if flt.start is not None and flt.end is not None and flt.end < flt.start:
        raise InvalidInputError("end", "the last day is before the first day")
    return replace(
        flt, statuses=tuple(s.strip().upper() for s in flt.statuses),
        countries=tuple(c.strip().upper() for c in flt.countries),
        providers=tuple(p.strip() for p in flt.providers), partners=partner_ids(flt.partners),
    )  # fmt: skip


def partner_ids(values: tuple[int, ...]) -> tuple[int, ...]:
    """Partner ids as whole numbers (a filter built from widgets or the CLI may hold text)."""
    try:
        return tuple(int(str(v).strip()) for v in values)
    except ValueError:
        raise InvalidInputError("partners", "partner ids are whole numbers") from None
