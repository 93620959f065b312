"""The data browsers (clicks, product catalogs): filter options, counts and charts, pages
of rows and the CSV download, all aggregated by DuckDB. One implementation for every
browsable data type, driven by its `BrowseSpec` (connectbatch/browse.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pyarrow as pa

from connectbatch import browse
from connectbatch.browse import BrowseFilter, BrowseOptions, BrowseSpec, BrowseSummary
from connectbatch.models import Role
from connectbatch.services.base import InvalidInputError, ServiceBase, requires
from connectbatch.services.calls import partner_ids
from connectbatch.store import browse as browse_store


class BrowseServices(ServiceBase):
    @requires(Role.PARTNER_MANAGER)
    def browse_options(self, data_type: str) -> BrowseOptions:
        """What a browser's filters offer: DISTINCT values of the loaded rows."""
        spec = _spec(data_type)
        with self.db.connect() as con:
            return browse_store.filter_options(con, spec)

    @requires(Role.PARTNER_MANAGER)
    def browse_summary(self, data_type: str, flt: BrowseFilter, top: int = 10) -> BrowseSummary:
        """Row count, KPIs, rows per day and the busiest values of the breakdown column for
        the rows a filter selects."""
        spec = _spec(data_type)
        flt = _checked(spec, flt)
        with self.db.connect() as con:
            return browse_store.summary(con, spec, flt, top)

    @requires(Role.PARTNER_MANAGER)
    def browse_rows(self, data_type: str, flt: BrowseFilter, page: int = 1, page_size: int = 50) -> pa.Table:
        """One page (from 1) of the rows a filter selects, newest first."""
        if page < 1:
            raise InvalidInputError("page", "pages are numbered from 1")
        if not 1 <= page_size <= 1000:
            raise InvalidInputError("page_size", "must be between 1 and 1000 rows")
        spec = _spec(data_type)
        flt = _checked(spec, flt)
        with self.db.connect() as con:
            return browse_store.page(con, spec, flt, page_size, (page - 1) * page_size)

    @requires(Role.PARTNER_MANAGER)
    def export_browse_csv(self, data_type: str, flt: BrowseFilter, target: Path) -> int:
        """Write every row a filter selects (all columns) to `target` as CSV; returns the
        number of rows. The file appears complete or not at all."""
        spec = _spec(data_type)
        flt = _checked(spec, flt)
        target = Path(target)
        tmp = target.with_name("." + target.name + ".tmp")
        try:
            with self.db.connect() as con:
                count = browse_store.export_csv(con, spec, flt, tmp)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
        return count


def _spec(data_type: str) -> BrowseSpec:
    try:
        return browse.spec(data_type)
    except KeyError:
        raise InvalidInputError(
            "data_type", f"{data_type!r} has no browser; one of {', '.join(browse.BROWSERS)}"
        ) from None


def _checked(spec: BrowseSpec, flt: BrowseFilter) -> BrowseFilter:
    """The filter with its values trimmed, or InvalidInputError naming what cannot be used."""
    if flt.start is not None and flt.end is not None and flt.end < flt.start:
        raise InvalidInputError("end", "the last day is before the first day")
    if flt.low is not None and flt.high is not None and flt.high < flt.low:
        raise InvalidInputError("high", "the highest amount is below the lowest")
    if (flt.low is not None or flt.high is not None) and spec.range_column is None:
        raise InvalidInputError("low", f"{spec.noun} have no amount to filter on")
    allowed = spec.filter_columns()
    values: dict[str, tuple[str | int, ...]] = {}
    for column, chosen in flt.values.items():
        if column not in allowed:
            raise InvalidInputError(column, f"{spec.noun} can be filtered on {', '.join(allowed)} only")
        if column in spec.id_filters:
            try:
                values[column] = tuple(int(str(v).strip()) for v in chosen)
            except ValueError:
                raise InvalidInputError(column, "ids are whole numbers") from None
        else:
            values[column] = tuple(str(v).strip() for v in chosen)
    text = (flt.text or "").strip() or None
    return replace(flt, values=values, text=text, partners=partner_ids(flt.partners))
