"""Read queries of the partner screens: the call-data explorer and the pending-actions list.

Everything is aggregated by DuckDB and comes back small (a few hundred rows at most): the
explorer must stay fast on millions of calls, so no function here returns all rows to
Python. The CSV export is written by DuckDB itself. Filter values are always bound as
parameters; only column names from the fixed maps below are put into SQL text.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from connectbatch import schemas
from connectbatch.explorer import (
    DURATION_BUCKETS,
    CallFilter,
    CallFilterOptions,
    CallKpis,
    DurationColumn,
)
from connectbatch.models import Action
from connectbatch.store import actions as action_store
from connectbatch.store import csvsql
from connectbatch.store import partners as partner_store
from connectbatch.store.db import all_rows, current_rows, quote

CALLS = current_rows("call_conversions")
# One call: its events (the call, each conversion) share the CallSessionId and differ in
# VendorEventId (schemas.record_key), so calls are counted as distinct connection and
# CallSessionId; each event is one row (and one action). ~0.05-0.15 s more a query at 1M rows.
CALL = '(connection_id, "CallSessionId")'

# The explorer's table: what a partner manager reads first, then the action it became.
PAGE_COLUMNS: tuple[str, ...] = (
    "EventDate", "CampaignId", "MediaId", "CallProvider", "CallSessionId", "CallStatus",
    "CallDuration", "TalkDuration", "CallerPhoneNumberCountry", "City", "Region", "SaleAmount",
    "DispositionName",
)  # fmt: skip
DURATION_COLUMNS: tuple[str, ...] = ("CallDuration", "TalkDuration")
_ORDER = '"EventDate" DESC, file_id, line'
_ACTION_COLUMNS = (
    'printf(\'A-%06d\', a.id) AS "ActionId", a.status AS "ActionStatus", a.amount AS "ActionAmount"'
)


def where(f: CallFilter) -> tuple[str, list[Any]]:
    """The WHERE clause of a filter (or "") and its parameters, in order."""
    clauses: list[str] = []
    params: list[Any] = []
    if f.start is not None:
        clauses.append('"EventDate" >= ?')
        params.append(_utc_midnight(f.start))
    if f.end is not None:
        clauses.append('"EventDate" < ?')
        params.append(_utc_midnight(f.end + dt.timedelta(days=1)))
    multi: tuple[tuple[str, tuple[Any, ...]], ...] = (
        ("CampaignId", f.campaigns),
        ("MediaId", f.media_ids),
        ("CallStatus", f.statuses),
        ("CallProvider", f.providers),
        ("CallerPhoneNumberCountry", f.countries),
    )
    for column, values in multi:
        if values:
            clauses.append(f"{quote(column)} IN ({', '.join('?' for _ in values)})")
            params.extend(values)
    if f.partners:
        owned, owners = partner_store.owned_connections(f.partners)
        clauses.append(owned)
        params.extend(owners)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _one(con: duckdb.DuckDBPyConnection, query: str, params: list[Any]) -> tuple[Any, ...]:
    """The one row of an aggregate, with the result finished (DuckDB 2 refuses new work on
    a connection while a result is still open)."""
    rows = con.execute(query, params).fetchall()
    assert len(rows) == 1, query
    return tuple(rows[0])


def _arrow(con: duckdb.DuckDBPyConnection, query: str, params: list[Any]) -> pa.Table:
    return con.sql(query, params=params).to_arrow_table()


def _utc_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def filter_options(con: duckdb.DuckDBPyConnection, limit: int = 1000) -> CallFilterOptions:
    """The values each filter offers; ids ordered by how many calls they have."""

    def busiest(column: str) -> list[int]:
        rows = con.execute(
            f"SELECT {quote(column)} FROM {CALLS} WHERE {quote(column)} IS NOT NULL "
            f"GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT ?",
            [limit],
        ).fetchall()
        return [int(r[0]) for r in rows]

    row = _one(
        con,
        f"""
        SELECT list(DISTINCT "CallStatus" ORDER BY "CallStatus"),
               list(DISTINCT "CallProvider" ORDER BY "CallProvider"),
               list(DISTINCT "CallerPhoneNumberCountry" ORDER BY "CallerPhoneNumberCountry"),
               CAST(timezone('UTC', min("EventDate")) AS DATE),
               CAST(timezone('UTC', max("EventDate")) AS DATE)
        FROM {CALLS}
        """,
        [],
    )
    statuses, providers, countries, first_day, last_day = row
    if first_day is None:
        return CallFilterOptions(option_limit=limit)
    return CallFilterOptions(
        campaigns=busiest("CampaignId"), media_ids=busiest("MediaId"),
        statuses=_present(statuses), providers=_present(providers), countries=_present(countries),
        first_day=first_day, last_day=last_day, option_limit=limit,
        partners=_call_partners(con), media_names=partner_store.media_names(con),
    )  # fmt: skip


def _call_partners(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str]]:
    """(id, name) of the partners whose connections delivered calls, by name."""
    rows = con.execute(
        f"SELECT p.id, p.name FROM partners p WHERE p.id IN (SELECT c.partner_id FROM connections c "
        f"WHERE c.id IN (SELECT DISTINCT connection_id FROM {CALLS})) ORDER BY p.name_key"
    ).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def _present(values: list[str | None] | None) -> list[str]:
    return [v for v in values or [] if v is not None]


def kpis(con: duckdb.DuckDBPyConnection, f: CallFilter) -> CallKpis:
    clause, params = where(f)
    row = _one(
        con,
        f"""
        SELECT count(*), count(*) FILTER (WHERE answered), coalesce(sum(talk), 0),
               coalesce(sum(sales), 0), coalesce(sum(amount), 0), coalesce(sum(events), 0)
        FROM (
            SELECT count(*) AS events, bool_or("CallStatus" = 'ANSWER') AS answered,
                   max("TalkDuration") AS talk, sum("SaleAmount") AS amount,
                   count("SaleAmount") FILTER (WHERE "SaleAmount" > 0) AS sales
            FROM {CALLS} {clause}
            GROUP BY {CALL}
        )
        """,
        params,
    )
    calls, answered, talk, sales, amount, events = row
    return CallKpis(
        calls=int(calls), answered=int(answered), talk_seconds=int(talk), sales=int(sales),
        sale_amount=Decimal(amount).quantize(Decimal("0.01")), rows=int(events),
    )  # fmt: skip


def per_day(con: duckdb.DuckDBPyConnection, f: CallFilter) -> pa.Table:
    """(day, status, calls): calls per UTC day and call status, each call once, on the day
    and with the status of its first event (the call itself; a sale the next day is still
    that call's). Counted per day and status of every event, a call whose conversion came
    after midnight counted on both days, and the chart's calls outnumbered the KPI's."""
    clause, params = where(f)
    # Whole days since the epoch are UTC days; grouping on them is ~6x faster than on a
    # time-zone conversion of every row.
    return _arrow(
        con,
        f"""
        SELECT DATE '1970-01-01' + CAST(day_number AS INTEGER) AS day, status, count(*) AS calls
        FROM (
            SELECT min(epoch_us("EventDate")) // 86400000000 AS day_number,
                   arg_min("CallStatus", "EventDate") AS status
            FROM {CALLS} {clause}
            GROUP BY {CALL}
        )
        GROUP BY ALL
        ORDER BY day, status
        """,
        params,
    )


def top_media(con: duckdb.DuckDBPyConnection, f: CallFilter, limit: int = 10) -> pa.Table:
    """(media_id, calls, answered, sale_amount, media_partner) of the media partners with
    most calls; media_partner is "Name (id)" where a partner has the MediaId, else the id."""
    clause, params = where(f)
    return _arrow(
        con,
        f"""
        SELECT t.*, {partner_store.media_label_sql("t.media_id")} AS media_partner
        FROM (
            SELECT "MediaId" AS media_id, count(DISTINCT {CALL}) AS calls,
                   count(DISTINCT {CALL}) FILTER (WHERE "CallStatus" = 'ANSWER') AS answered,
                   coalesce(sum("SaleAmount"), 0) AS sale_amount
            FROM {CALLS} {clause}
            GROUP BY ALL ORDER BY calls DESC, media_id LIMIT ?
        ) t
        ORDER BY t.calls DESC, t.media_id
        """,
        [*params, limit],
    )


def durations(con: duckdb.DuckDBPyConnection, f: CallFilter, column: DurationColumn) -> pa.Table:
    """(bucket, calls) for every bucket of DURATION_BUCKETS, in order, zeros included."""
    if column not in DURATION_COLUMNS:
        raise ValueError(f"no duration column {column!r}")
    clause, params = where(f)
    cases = " ".join(
        f"WHEN {quote(column)} >= {lower} THEN {i}"
        for i, (lower, _label) in reversed(list(enumerate(DURATION_BUCKETS)))
    )
    rows = con.execute(
        f"SELECT CASE {cases} ELSE 0 END AS bucket, count(DISTINCT {CALL}) FROM {CALLS} "
        f"{clause}{' AND' if clause else 'WHERE'} {quote(column)} IS NOT NULL GROUP BY 1",
        params,
    ).fetchall()
    counts = dict(rows)
    return pa.table(
        {
            "bucket": [label for _lower, label in DURATION_BUCKETS],
            "calls": pa.array([int(counts.get(i, 0)) for i in range(len(DURATION_BUCKETS))], pa.int64()),
        }
    )


def page(con: duckdb.DuckDBPyConnection, f: CallFilter, limit: int, offset: int) -> pa.Table:
    """One page of calls, newest first, with the action each became, the media partner's
    label ("Name (id)" where known) and the partner the delivering connection belongs to."""
    clause, params = where(f)
    columns = ", ".join(quote(c) for c in PAGE_COLUMNS)
    shown = ", ".join(f"p.{quote(c)}" for c in PAGE_COLUMNS)
    return _arrow(
        con,
        f"""
        WITH p AS (
            SELECT file_id, line, connection_id, {columns} FROM {CALLS} {clause}
            ORDER BY {_ORDER} LIMIT ? OFFSET ?
        )
        SELECT {shown}, {_ACTION_COLUMNS},
               {partner_store.media_label_sql('p."MediaId"')} AS "MediaPartner",
               pt.name AS "Partner"
        FROM p LEFT JOIN actions a ON a.file_id = p.file_id AND a.line = p.line
        LEFT JOIN connections c ON c.id = p.connection_id
        LEFT JOIN partners pt ON pt.id = c.partner_id
        ORDER BY p."EventDate" DESC, p.file_id, p.line
        """,
        [*params, limit, offset],
    )


def export_csv(con: duckdb.DuckDBPyConnection, f: CallFilter, target: Path) -> int:
    """Write the filtered calls (every column of the data type, then their action) as CSV
    to `target`; returns how many rows it wrote. DuckDB streams the rows to the file.

    The rows are not sorted: sorting a million wide rows costs more than the rest of the
    export together (about 4 s of 7 on 1M rows), and a spreadsheet sorts them anyway."""
    clause, params = where(f)
    columns = ", ".join(csvsql.column_cell("d", c) for c in schemas.get("call_conversions").columns)
    query = (
        f"SELECT {columns}, {_ACTION_COLUMNS} FROM (SELECT * FROM {CALLS} {clause}) d "
        "LEFT JOIN actions a ON a.file_id = d.file_id AND a.line = d.line"
    )
    path = csvsql.sql_path(target)
    return int(_one(con, f"COPY ({query}) TO '{path}' (HEADER, DELIMITER ',')", params)[0])


# ---------------------------------------------------------------------- pending actions


def search_actions(
    con: duckdb.DuckDBPyConnection,
    *,
    connection_id: int | None = None,
    statuses: tuple[str, ...] = (),
    action_id: int | None = None,
    text: str | None = None,
    limit: int = 50,
    offset: int = 0,
    partners: tuple[int, ...] = (),
) -> tuple[list[Action], int]:
    """A page of actions, newest first, and how many match. `text` matches the source key
    (case-insensitive, anywhere in it); with `action_id` too, either may match."""
    clauses: list[str] = []
    params: list[Any] = []
    if connection_id is not None:
        clauses.append("connection_id = ?")
        params.append(connection_id)
    if statuses:
        clauses.append(f"status IN ({', '.join('?' for _ in statuses)})")
        params.extend(statuses)
    if partners:
        owned, owners = partner_store.owned_connections(partners)
        clauses.append(owned)
        params.extend(owners)
    found: list[str] = []
    if action_id is not None:
        found.append("id = ?")
        params.append(action_id)
    if text:
        found.append("strpos(lower(source_key), lower(?)) > 0")
        params.append(text)
    if found:
        clauses.append("(" + " OR ".join(found) + ")")
    clause = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    total = int(_one(con, f"SELECT count(*) FROM actions {clause}", params)[0])
    page_of = action_store._select(
        con, f"{clause} ORDER BY id DESC LIMIT ? OFFSET ?", [*params, limit, offset]
    )
    return page_of, total


def version(con: duckdb.DuckDBPyConnection) -> tuple[int, ...]:
    """A cheap mark of everything the explorer's reads depend on, for the app's cached read
    models: it changes when calls are loaded, superseded or removed (row count, newest file,
    ended rows) and when partners, their MediaIds or the connections' partners change. Counts
    and hashes only: no call row comes back."""
    row = _one(
        con,
        f"""
        SELECT count(*), coalesce(max(file_id), 0), count(valid_to),
               (SELECT coalesce(hash(string_agg(id || '|' || name, ',' ORDER BY id)), 0) FROM partners),
               (SELECT coalesce(hash(string_agg(media_id || '|' || partner_id, ',' ORDER BY media_id)), 0)
                FROM partner_media),
               (SELECT coalesce(hash(string_agg(id || '|' || coalesce(partner_id, -1), ',' ORDER BY id)), 0)
                FROM connections)
        FROM {all_rows("call_conversions")}
        """,
        [],
    )
    return tuple(int(v) for v in row)
