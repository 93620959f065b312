"""Typed inputs and results of the data browsers: one schema-driven browser for the data
types that have no explorer of their own (clicks, product catalogs).

A `BrowseSpec` says, per data type, which of its columns the browser filters on, counts and
lists; the store (store/browse.py) turns a spec and a `BrowseFilter` into SQL that DuckDB
aggregates, and the page (app_pages/data_browser.py) turns widgets into a filter. Only
column names from a spec ever reach SQL text, and every spec column is checked against the
schema registry when the module is imported, so a renamed column fails loudly, not in SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import pyarrow as pa

from connectbatch import schemas
from connectbatch.escaping import visible

# What the browser shows instead of a date column for data types that have none (catalogs):
# when the row was loaded, i.e. when its run started.
LOADED_AT = "LoadedAt"
CONNECTION = "Connection"
PARTNER = "Partner"  # the partner the delivering connection belongs to


@dataclass(frozen=True)
class Kpi:
    """One tile above the table: a fixed aggregate over the filtered rows. `sql` is code
    written here, never input; `money` says how the page formats the value."""

    label: str
    sql: str  # NULL: the rows shown have no single value (shown as "—")
    money: bool = False
    help: str = ""


@dataclass(frozen=True)
class BrowseSpec:
    """How one data type is browsed; every name is a column of `data_type` (or LOADED_AT)."""

    data_type: str
    title: str  # "Clicks": the page's heading and the noun of its counts
    url_path: str  # where the page is reached ("clicks", "catalog")
    date_column: str  # a TIMESTAMP column, or LOADED_AT
    id_filters: tuple[str, ...] = ()  # integer ids: the busiest are offered, any can be typed
    choice_filters: tuple[str, ...] = ()  # coded or short text columns: pick from DISTINCT
    range_column: str | None = None  # a DECIMAL column filtered by a low/high pair
    search_columns: tuple[str, ...] = ()  # text searched (case-insensitive, anywhere in it)
    breakdown: str | None = None  # the "top values" chart
    kpis: tuple[Kpi, ...] = ()
    page_columns: tuple[str, ...] = ()

    @property
    def dtype(self) -> schemas.DataType:
        return schemas.get(self.data_type)

    @property
    def noun(self) -> str:
        return self.title.lower()

    def filter_columns(self) -> tuple[str, ...]:
        """Columns a `BrowseFilter.values` entry may name."""
        return self.id_filters + self.choice_filters

    def check(self) -> None:
        """Raise ValueError when a spec names a column its data type lacks or of a wrong kind."""
        dtype = self.dtype
        names = set(dtype.column_names)
        wanted = (*self.filter_columns(), *self.search_columns, *self.page_columns)
        wanted += tuple(c for c in (self.range_column, self.breakdown) if c is not None)
        missing = [c for c in wanted if c not in names]
        if missing:
            raise ValueError(f"{self.data_type} has no column(s) {', '.join(missing)}")
        if (
            self.date_column != LOADED_AT
            and dtype.column(self.date_column).kind is not schemas.Kind.TIMESTAMP
        ):
            raise ValueError(f"{self.date_column} of {self.data_type} is not a timestamp")
        for column in self.id_filters:
            if dtype.column(column).kind is not schemas.Kind.INTEGER:
                raise ValueError(f"{column} of {self.data_type} is not an integer id")
        if self.range_column is not None and dtype.column(self.range_column).kind is not schemas.Kind.DECIMAL:
            raise ValueError(f"{self.range_column} of {self.data_type} is not an amount")


def _distinct(column: str) -> str:
    return f'count(DISTINCT "{column}")'


CLICKS = BrowseSpec(
    data_type="clicks",
    title="Clicks",
    url_path="clicks",
    date_column="EventDate",
    id_filters=("CampaignId", "MediaId"),
    choice_filters=("DeviceType", "Country"),
    search_columns=("ClickId", "LandingPageUrl", "SubId1"),
    breakdown="MediaId",
    kpis=(
        Kpi("Clicks", "count(*)"),
        Kpi("Campaigns", _distinct("CampaignId")),
        Kpi("Media partners", _distinct("MediaId")),
        Kpi("Countries", _distinct("Country")),
        Kpi(
            "Mobile share",
            "coalesce(avg(CASE WHEN \"DeviceType\" = 'Mobile' THEN 1.0 ELSE 0.0 END), 0)",
            help="share of clicks from mobile devices",
        ),
    ),
    page_columns=(
        "EventDate",
        "ClickId",
        "CampaignId",
        "MediaId",
        "AdId",
        "DeviceType",
        "Country",
        "LandingPageUrl",
        "ReferringUrl",
        "SubId1",
        "SubId2",
        "SubId3",
    ),
)

PRODUCT_CATALOGS = BrowseSpec(
    data_type="product_catalogs",
    title="Catalog items",
    url_path="catalog",
    date_column=LOADED_AT,
    choice_filters=("Category", "Manufacturer", "StockAvailability", "Condition", "Currency"),
    range_column="CurrentPrice",
    search_columns=("CatalogItemId", "Name", "Gtin", "Mpn"),
    breakdown="Category",
    kpis=(
        Kpi("Catalog items", "count(*)", help="rows loaded (an item sent twice counts twice)"),
        Kpi("Distinct items", _distinct("CatalogItemId"), help="different CatalogItemIds"),
        Kpi("In stock", "count(*) FILTER (WHERE \"StockAvailability\" = 'InStock')"),
        Kpi("Categories", _distinct("Category")),
        # An average of prices in several currencies is no price (10 EUR and 10 JPY made
        # "Average price 10.00"): none then, and the tile says to filter by Currency.
        Kpi(
            "Average price",
            "CASE WHEN count(DISTINCT coalesce(\"Currency\", 'USD')) > 1 THEN NULL "
            'ELSE CAST(coalesce(avg("CurrentPrice"), 0) AS DECIMAL(18, 2)) END',
            money=True,
            help="of CurrentPrice, in one currency: none when the items shown have several "
            "(filter by Currency)",
        ),
    ),
    page_columns=(
        "CatalogItemId",
        "Name",
        "CurrentPrice",
        "OriginalPrice",
        "Currency",
        "StockAvailability",
        "Condition",
        "Category",
        "Manufacturer",
        "Gtin",
        "Mpn",
        "Url",
    ),
)

BROWSERS: dict[str, BrowseSpec] = {spec.data_type: spec for spec in (CLICKS, PRODUCT_CATALOGS)}
for _spec in BROWSERS.values():
    _spec.check()


def spec(data_type: str) -> BrowseSpec:
    """The browser of `data_type`; KeyError names the browsable types."""
    try:
        return BROWSERS[data_type]
    except KeyError:
        raise KeyError(f"no browser for {data_type!r}; browsable: {', '.join(BROWSERS)}") from None


@dataclass(frozen=True)
class BrowseFilter:
    """What a browser shows: empty tuples, empty mappings and None mean "any"; `end` is
    inclusive. New filters (a partner, say) are new fields with an "any" default."""

    start: dt.date | None = None
    end: dt.date | None = None
    connections: tuple[int, ...] = ()
    # column -> the values it may have (columns of the spec's id_filters and choice_filters)
    values: Mapping[str, tuple[str | int, ...]] = field(default_factory=dict)
    low: Decimal | None = None  # of the spec's range_column, inclusive
    high: Decimal | None = None
    text: str | None = None  # searched in the spec's search_columns
    partners: tuple[int, ...] = ()  # partner ids: rows of connections that belong to one


@dataclass(frozen=True)
class BrowseOptions:
    """Values the filters offer, from DISTINCT queries over the loaded rows: each filter
    column's busiest `option_limit` values (any other id can be typed), the connections
    that have rows (id, name), the date and range bounds."""

    values: dict[str, list[str | int]] = field(default_factory=dict)
    connections: list[tuple[int, str]] = field(default_factory=list)
    first_day: dt.date | None = None
    last_day: dt.date | None = None
    low: Decimal | None = None
    high: Decimal | None = None
    option_limit: int = 1000
    # (id, name) of the partners whose connections delivered rows, by name
    partners: list[tuple[int, str]] = field(default_factory=list)
    # the partner name of each MediaId a partner has: labels like "Leadwave Media (98765)"
    media_names: dict[int, str] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return self.first_day is None


@dataclass(frozen=True)
class BrowseSummary:
    """Everything above a browser's table, for one filter.

    kpis: (Kpi, value) in the spec's order. per_day: day (date), rows. top: value (text),
    rows — the spec's breakdown column's busiest values (a MediaId as "Name (id)" where a
    partner has it).
    """

    rows: int
    kpis: list[tuple[Kpi, int | float | Decimal | None]]  # None: no single value (Average price)
    per_day: pa.Table
    top: pa.Table


def visible_table(table: pa.Table) -> pa.Table:
    """`table` with control characters in every text cell made visible (escaping.visible):
    partner text shown in the app must not reorder or hide what a person reads. Meant for a
    page of rows (it walks them in Python)."""
    columns = []
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            column = pa.array([None if v is None else visible(v) for v in column.to_pylist()], column.type)
        columns.append(column)
    return pa.table(columns, names=table.column_names)
