"""Read queries of the data browsers (clicks, product catalogs), driven by a `BrowseSpec`.

As for the call-data explorer (store/calls.py), DuckDB does every aggregation and only
small results come back: counts, a few hundred chart rows, one page of rows. The CSV
download is written by DuckDB itself. Filter values are always bound as parameters; only
column names of the spec (checked against the schema registry) are put into SQL text, and
a filter naming any other column is refused.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from connectbatch.browse import (
    CONNECTION,
    LOADED_AT,
    PARTNER,
    BrowseFilter,
    BrowseOptions,
    BrowseSpec,
    BrowseSummary,
    Kpi,
)
from connectbatch.store import csvsql
from connectbatch.store import partners as partner_store
from connectbatch.store.db import current_rows, quote


def source(spec: BrowseSpec) -> str:
    """The rows of the spec's data type as relation `d`; with LOADED_AT, each row carries
    the start of the run that loaded it."""
    table = current_rows(spec.data_type)
    if spec.date_column == LOADED_AT:
        return (
            f"(SELECT t.*, r.started_at AS {quote(LOADED_AT)} FROM {table} t "
            "JOIN runs r ON r.id = t.run_id) d"
        )
    return f"{table} d"


def _utc_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def where(spec: BrowseSpec, f: BrowseFilter) -> tuple[str, list[Any]]:
    """The WHERE clause of a filter (or "") and its parameters, in order."""
    clauses: list[str] = []
    params: list[Any] = []
    date = f"d.{quote(spec.date_column)}"
    if f.start is not None:
        clauses.append(f"{date} >= ?")
        params.append(_utc_midnight(f.start))
    if f.end is not None:
        clauses.append(f"{date} < ?")
        params.append(_utc_midnight(f.end + dt.timedelta(days=1)))
    if f.connections:
        clauses.append(f"d.connection_id IN ({', '.join('?' for _ in f.connections)})")
        params.extend(f.connections)
    if f.partners:
        owned, owners = partner_store.owned_connections(f.partners, "d.connection_id")
        clauses.append(owned)
        params.extend(owners)
    allowed = spec.filter_columns()
    for column, values in f.values.items():
        if column not in allowed:
            raise ValueError(f"{spec.noun} cannot be filtered on {column!r}")
        if values:
            clauses.append(f"d.{quote(column)} IN ({', '.join('?' for _ in values)})")
            params.extend(values)
    if (f.low is not None or f.high is not None) and spec.range_column is None:
        raise ValueError(f"{spec.noun} have no amount to filter on")
    if spec.range_column is not None:
        amount = f"d.{quote(spec.range_column)}"
        if f.low is not None:
            clauses.append(f"{amount} >= ?")
            params.append(f.low)
        if f.high is not None:
            clauses.append(f"{amount} <= ?")
            params.append(f.high)
    if f.text and spec.search_columns:
        found = [f"strpos(lower(CAST(d.{quote(c)} AS VARCHAR)), lower(?)) > 0" for c in spec.search_columns]
        clauses.append("(" + " OR ".join(found) + ")")
        params.extend([f.text] * len(spec.search_columns))
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _one(con: duckdb.DuckDBPyConnection, query: str, params: list[Any]) -> tuple[Any, ...]:
    """The one row of an aggregate, with the result finished (DuckDB refuses new work on a
    connection while a result is still open)."""
    rows = con.execute(query, params).fetchall()
    assert len(rows) == 1, query
    return tuple(rows[0])


def _arrow(con: duckdb.DuckDBPyConnection, query: str, params: list[Any]) -> pa.Table:
    return con.sql(query, params=params).to_arrow_table()


def filter_options(con: duckdb.DuckDBPyConnection, spec: BrowseSpec, limit: int = 1000) -> BrowseOptions:
    """The values each filter offers, busiest first (ids) or in order (coded text)."""
    src = source(spec)
    date = f"d.{quote(spec.date_column)}"
    amount = f"d.{quote(spec.range_column)}" if spec.range_column else "NULL"
    first_day, last_day, low, high = _one(
        con,
        f"SELECT CAST(timezone('UTC', min({date})) AS DATE), CAST(timezone('UTC', max({date})) AS DATE), "
        f"min({amount}), max({amount}) FROM {src}",
        [],
    )
    if first_day is None:
        return BrowseOptions(option_limit=limit)
    values: dict[str, list[str | int]] = {}
    for column in spec.filter_columns():
        rows = con.execute(
            f"SELECT {quote(column)} FROM (SELECT d.{quote(column)}, count(*) AS n FROM {src} "
            f"WHERE d.{quote(column)} IS NOT NULL GROUP BY 1 ORDER BY n DESC, 1 LIMIT ?)",
            [limit],
        ).fetchall()
        found = [r[0] for r in rows]
        values[column] = found if column in spec.id_filters else sorted(found)
    connections = con.execute(
        f"""
        SELECT d.connection_id, coalesce(c.name, 'connection ' || d.connection_id)
        FROM {src} LEFT JOIN connections c ON c.id = d.connection_id
        GROUP BY ALL ORDER BY count(*) DESC, 1 LIMIT ?
        """,
        [limit],
    ).fetchall()
    partners = con.execute(
        f"SELECT p.id, p.name FROM partners p WHERE p.id IN (SELECT c.partner_id FROM connections c "
        f"WHERE c.id IN (SELECT DISTINCT d.connection_id FROM {src})) ORDER BY p.name_key"
    ).fetchall()
    return BrowseOptions(
        values=values, connections=[(int(i), str(n)) for i, n in connections],
        first_day=first_day, last_day=last_day, low=low, high=high, option_limit=limit,
        partners=[(int(i), str(n)) for i, n in partners], media_names=partner_store.media_names(con),
    )  # fmt: skip


def summary(
    con: duckdb.DuckDBPyConnection, spec: BrowseSpec, f: BrowseFilter, top: int = 10
) -> BrowseSummary:
    """Row count, the spec's KPIs, rows per UTC day and the breakdown's busiest values."""
    clause, params = where(spec, f)
    src = source(spec)
    aggregates = ", ".join(["count(*)", *(k.sql for k in spec.kpis)])
    row = _one(con, f"SELECT {aggregates} FROM {src} {clause}", params)
    kpis = [(k, _kpi(k, v)) for k, v in zip(spec.kpis, row[1:], strict=True)]
    date = f"d.{quote(spec.date_column)}"
    # Whole days since the epoch are UTC days; grouping on them is much faster than on a
    # time-zone conversion of every row.
    per_day = _arrow(
        con,
        f"""
        SELECT DATE '1970-01-01' + CAST(day_number AS INTEGER) AS day, rows
        FROM (SELECT epoch_us({date}) // 86400000000 AS day_number, count(*) AS rows
              FROM {src} {clause} GROUP BY ALL)
        ORDER BY day
        """,
        params,
    )
    if spec.breakdown is None:
        top_values = pa.table({"value": pa.array([], pa.string()), "rows": pa.array([], pa.int64())})
    else:
        column = f"d.{quote(spec.breakdown)}"
        extra = f"{' AND' if clause else 'WHERE'} {column} IS NOT NULL"
        labelled = spec.breakdown == "MediaId"
        value = partner_store.media_label_sql("t.v") if labelled else "t.v"
        top_values = _arrow(
            con,
            f"SELECT {value} AS value, t.rows FROM (SELECT CAST({column} AS VARCHAR) AS v, count(*) AS rows "
            f"FROM {src} {clause}{extra} GROUP BY ALL ORDER BY rows DESC, v LIMIT ?) t "
            "ORDER BY t.rows DESC, t.v",
            [*params, top],
        )
    return BrowseSummary(rows=int(row[0]), kpis=kpis, per_day=per_day, top=top_values)


def _kpi(kpi: Kpi, value: Any) -> int | float | Decimal | None:
    """A KPI's value; None where a money KPI has none (Average price over several currencies)."""
    if value is None and kpi.money:
        return None
    return _number(value)


def _number(value: Any) -> int | float | Decimal:
    if isinstance(value, int | Decimal):
        return value
    return float(value or 0)


def _shown(spec: BrowseSpec) -> list[str]:
    """The page's columns: the date first (LOADED_AT when the type has no date of its own)."""
    columns = list(spec.page_columns)
    if spec.date_column not in columns:
        columns.insert(0, spec.date_column)
    return columns


def page(
    con: duckdb.DuckDBPyConnection, spec: BrowseSpec, f: BrowseFilter, limit: int, offset: int
) -> pa.Table:
    """One page of rows, newest first, with the connection that delivered each and where
    (run, line) it came from."""
    clause, params = where(spec, f)
    columns = _shown(spec)
    picked = ", ".join(f"d.{quote(c)}" for c in columns)
    shown = ", ".join(f"p.{quote(c)}" for c in columns)
    order = f"{quote(spec.date_column)} DESC, file_id, line"
    return _arrow(
        con,
        f"""
        WITH p AS (
            SELECT d.run_id, d.file_id, d.line, d.connection_id, {picked} FROM {source(spec)} {clause}
            ORDER BY {order} LIMIT ? OFFSET ?
        )
        SELECT {shown}, c.name AS {quote(CONNECTION)}, pt.name AS {quote(PARTNER)}, p.run_id AS "Run",
               p.line AS "Line"
        FROM p LEFT JOIN connections c ON c.id = p.connection_id
        LEFT JOIN partners pt ON pt.id = c.partner_id
        ORDER BY p.{order.replace(", ", ", p.")}
        """,
        [*params, limit, offset],
    )


def export_csv(con: duckdb.DuckDBPyConnection, spec: BrowseSpec, f: BrowseFilter, target: Path) -> int:
    """Write the filtered rows (every column of the data type, then the load time where the
    type has no date, the connection, run and line) as CSV to `target`; returns how many
    rows it wrote. DuckDB streams the rows to the file; they are not sorted (see
    store/calls.export_csv: sorting costs more than the rest of the export)."""
    clause, params = where(spec, f)
    cells = [csvsql.column_cell("d", c) for c in spec.dtype.columns]
    if spec.date_column == LOADED_AT:
        cells.append(csvsql.cell(f"d.{quote(LOADED_AT)}", LOADED_AT, text=False))
    cells += [csvsql.cell("c.name", CONNECTION), 'd.run_id AS "Run"', 'd.line AS "Line"']
    query = (
        f"SELECT {', '.join(cells)} FROM (SELECT d.* FROM {source(spec)} {clause}) d "
        "LEFT JOIN connections c ON c.id = d.connection_id"
    )
    path = csvsql.sql_path(target)
    return int(_one(con, f"COPY ({query}) TO '{path}' (HEADER, DELIMITER ',')", params)[0])
