"""Accepted rows of every data type, loaded straight from Arrow.

A stored row is never rewritten: a newer version of a record (a catalog update, a correction
in `supersede` mode) or its removal from a catalog snapshot ends the stored row (`valid_to`,
`superseded_by` = the file, `end_reason`), so the current rows are those with `valid_to`
NULL and every earlier version stays queryable.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from connectbatch import schemas
from connectbatch.schemas import record_key
from connectbatch.store import keys as key_index
from connectbatch.store import parts
from connectbatch.store.db import all_rows, data_table, quote

# A file of at least this many accepted rows is stored as a Parquet part (store/parts.py)
# instead of inserted: ~2.3x less CPU and no DuckDB insert buffers for a 1M-row file. Small
# files stay in the table, so the views list few part files. Tests lower it.
PARQUET_MIN_ROWS = 100_000


def staged_rows(
    table: pa.Table, lines: pa.Array, *, run_id: int, file_id: int, connection_id: int
) -> pa.Table:
    """A parsed table as stored: its columns, then run_id, file_id, connection_id and line."""
    n = table.num_rows
    return (
        table.append_column("run_id", pa.repeat(pa.scalar(run_id, pa.int64()), n))
        .append_column("file_id", pa.repeat(pa.scalar(file_id, pa.int64()), n))
        .append_column("connection_id", pa.repeat(pa.scalar(connection_id, pa.int64()), n))
        .append_column("line", lines.cast(pa.int64()))
    )


def stored_in(data_type: str, rows: int) -> str:
    """Where a file that stored `rows` accepted rows keeps them: the data type's table below
    `PARQUET_MIN_ROWS`, else its Parquet part, read through the view over both. A small
    file's rows read back from the table alone skip the parts' glob and footer reads (~5 ms
    a statement once a big file was loaded, issue 13)."""
    return data_table(data_type) if rows < PARQUET_MIN_ROWS else all_rows(data_type)


def insert_rows(
    con: duckdb.DuckDBPyConnection,
    data_type: str,
    *,
    run_id: int,
    file_id: int,
    connection_id: int,
    table: pa.Table,
    lines: pa.Array,
) -> int:
    """Append a parsed table; DuckDB scans the Arrow buffers directly (no Python rows).

    A big table goes in one row group (`ROW_GROUP_ROWS`) per statement, in order, inside the
    caller's transaction: one statement over a million rows held ~550 MB of DuckDB buffers at
    its peak, one row group at a time ~330 MB, for the same work (issue 13: peak memory).
    A table of `PARQUET_MIN_ROWS` or more becomes a Parquet part instead (store/parts.py).
    Either way the rows' keys go into the key index (store/keys.py)."""
    if table.num_rows == 0:
        return 0
    n = table.num_rows
    staged = staged_rows(table, lines, run_id=run_id, file_id=file_id, connection_id=connection_id)
    if n >= PARQUET_MIN_ROWS:
        written = parts.write(con, data_type, file_id, staged)
        _insert(con, data_type, staged, into_table=False)
        return written
    _insert(con, data_type, staged)
    return int(n)


def _insert(
    con: duckdb.DuckDBPyConnection, data_type: str, staged: pa.Table, *, into_table: bool = True
) -> None:
    """Insert stored-shape rows into the data type's table (unless stored elsewhere) and
    their keys into the key index, one row group (`ROW_GROUP_ROWS`) per statement."""
    sql = f"INSERT INTO {data_table(data_type)} BY NAME SELECT * FROM _cb_rows"
    for start in range(0, staged.num_rows, ROW_GROUP_ROWS):
        _cb_rows = staged.slice(start, ROW_GROUP_ROWS)  # a view, not a copy; read by name (db.py)
        if into_table:
            con.execute(sql)
        key_index.add(con, data_type, _cb_rows, staged.column_names)


def adopt_rows(
    con: duckdb.DuckDBPyConnection, data_type: str, *, file_id: int, written: Path, rows: int
) -> int:
    """Load a file's rows that a streamed ingest already wrote as Parquet (`parts.stream_path`:
    the staged columns, as `insert_rows` would store them) inside the caller's transaction:
    `PARQUET_MIN_ROWS` or more become the file's part as they are (no copy); fewer are
    inserted into the table by DuckDB reading the file, as `insert_rows` keeps small files
    there (the caller deletes the written file afterwards)."""
    source = "read_parquet('" + str(written).replace("'", "''") + "')"
    if rows:  # before `adopt` makes the file its part
        key_index.add(con, data_type, source, pq.read_schema(written).names)
    if rows >= PARQUET_MIN_ROWS:
        return parts.adopt(con, data_type, file_id, written, rows)
    if rows:
        con.execute(f"INSERT INTO {data_table(data_type)} BY NAME SELECT * FROM {source}")
    return rows


def insert_many(
    con: duckdb.DuckDBPyConnection,
    data_type: str,
    connection_id: int,
    batches: list[tuple[int, int, pa.Table, pa.Array]],
) -> int:
    """`insert_rows` for several small tables of one connection, each (run id, file id, table,
    lines), in one statement (group commit: a register, an insert and an unregister per file
    cost ~2 ms, issue 13). All of them go to the table: the caller keeps the total under
    PARQUET_MIN_ROWS (a big file is stored as a part of its own)."""
    staged = []
    for run_id, file_id, table, lines in batches:
        if table.num_rows:
            staged.append(
                staged_rows(table, lines, run_id=run_id, file_id=file_id, connection_id=connection_id)
            )
    total = int(sum(t.num_rows for t in staged))
    if not total:
        return 0
    if total >= PARQUET_MIN_ROWS:
        raise ValueError(f"{total} rows at once: a group's rows stay under {PARQUET_MIN_ROWS}")
    _insert(con, data_type, pa.concat_tables(staged, promote_options="default"))
    return total


# Up to this many values go to DuckDB as a bound list parameter; more as a registered Arrow
# table. Registering and unregistering are two statements (~1 ms of a small file's ingest);
# a list costs a Python object per value, which only a large file would feel.
SMALL_LIST = 4096

# DuckDB's row group (its default row_group_size): one per INSERT of a big table.
ROW_GROUP_ROWS = 122_880


def existing_keys(
    con: duckdb.DuckDBPyConnection, data_type: str, connection_id: int, table: pa.Table
) -> list[str]:
    """The identity texts (`record_key`) of the rows of `table` the connection has already
    loaded. A big table's identities are computed by DuckDB from its key columns (no Arrow
    pass over a million rows); a small one's are bound as one list (no register)."""
    dtype = schemas.get(data_type)
    if not dtype.key_columns or table.num_rows == 0:
        return []
    if table.num_rows <= SMALL_LIST:
        return loaded_identities(con, data_type, connection_id, record_key.texts(dtype, table).to_pylist())
    present = [c for c in dtype.key_columns if c in table.column_names]
    con.register("_cb_keys", table.select(present))
    try:
        incoming = f"(SELECT {record_key.sql(dtype, 'i', present)} AS k FROM _cb_keys i)"
        return _loaded(con, dtype, connection_id, incoming, [])
    finally:
        con.unregister("_cb_keys")


def loaded_identities(
    con: duckdb.DuckDBPyConnection, data_type: str, connection_id: int, identities: Sequence[str | None]
) -> list[str]:
    """Which of `identities` (`record_key` texts) the connection has already loaded."""
    dtype = schemas.get(data_type)
    if not dtype.key_columns or not identities:
        return []
    return _loaded(con, dtype, connection_id, "(SELECT unnest(?) AS k)", [identities])


def _loaded(
    con: duckdb.DuckDBPyConnection,
    dtype: schemas.DataType,
    connection_id: int,
    incoming: str,
    params: list[Any],
) -> list[str]:
    """The identities in column `k` of the relation `incoming` that the connection has
    loaded: the key index names the files that may hold them (none for new keys: one
    statement), and only those files' stored rows are compared."""
    files = key_index.files_with(con, dtype.key, connection_id, incoming, params)
    if not files:
        return []
    key = record_key.sql(dtype, "d")
    rows = con.execute(
        f"SELECT DISTINCT {key} FROM {all_rows(dtype.key)} d JOIN {incoming} k ON {key} = k.k "
        f"WHERE d.connection_id = ? AND {key_index.file_filter(files)}",
        [*params, connection_id],
    ).fetchall()
    return [r[0] for r in rows]


@dataclass(frozen=True)
class Repeat:
    """An incoming row whose key the connection already holds a current row for."""

    line: int  # the incoming row's physical line
    old_file_id: int  # the stored (current) row it repeats
    old_line: int
    identical: bool  # every column the file carries is the same: nothing to change


def repeats(
    con: duckdb.DuckDBPyConnection,
    data_type: str,
    connection_id: int,
    table: pa.Table,
    lines: pa.Array,
) -> list[Repeat]:
    """The rows of `table` that repeat a current stored record of the connection (same
    identity, `record_key`; `valid_to` NULL), and whether they change anything. One set-based join: a
    100,000-item catalog costs one scan, not 100,000 lookups; of the files the key index
    names only (none when every key is new)."""
    dtype = schemas.get(data_type)
    if not dtype.key_columns or table.num_rows == 0:
        return []
    compared = [c for c in dtype.column_names if c in table.column_names]
    same = " AND ".join(f'n."{c}" IS NOT DISTINCT FROM d."{c}"' for c in compared) or "TRUE"
    incoming = table.select(compared).append_column("_cb_line", lines.cast(pa.int64()))
    con.register("_cb_incoming", incoming)
    try:
        incoming_key = record_key.sql(dtype, "n", compared)
        files = key_index.files_with(
            con, data_type, connection_id, f"(SELECT {incoming_key} AS k FROM _cb_incoming n)", []
        )
        if not files:
            return []
        rows = con.execute(
            f"SELECT n._cb_line, d.file_id, d.line, ({same}) FROM _cb_incoming n "
            f"JOIN {all_rows(data_type)} d ON {record_key.sql(dtype, 'd')} = {incoming_key} "
            f"WHERE d.connection_id = ? AND d.valid_to IS NULL AND {key_index.file_filter(files)} "
            "ORDER BY n._cb_line, d.file_id, d.line",
            [connection_id],
        ).fetchall()
    finally:
        con.unregister("_cb_incoming")
    return [Repeat(int(r[0]), int(r[1]), int(r[2]), bool(r[3])) for r in rows]


def with_stored_columns(
    con: duckdb.DuckDBPyConnection, data_type: str, connection_id: int, table: pa.Table
) -> pa.Table:
    """A product catalog file's rows with the columns the file did not send (parser.api.ABSENT)
    taken from the item's current stored version, where it has one: a price-only update left
    the description and image empty and read a JPY price as USD, the default currency
    (data-types audit). New items keep the defaults; other data types are left as sent."""
    absent = [c for c in (table.schema.metadata or {}).get(ABSENT, b"").decode().split(",") if c]
    if data_type != "product_catalogs" or not absent or table.num_rows == 0:
        return table
    dtype = schemas.get(data_type)
    sent = [c for c in dtype.column_names if c in table.column_names and c not in absent]
    positions = pa.array(range(table.num_rows), pa.int64())
    incoming = table.select(sent).append_column("_cb_pos", positions)
    joined = f"{record_key.sql(dtype, 'd')} = {record_key.sql(dtype, 'n', sent)}"
    con.register("_cb_incoming", incoming)
    try:
        stored = con.sql(
            f"SELECT n._cb_pos, {', '.join(f'd.{quote(c)}' for c in absent)} FROM _cb_incoming n "
            f"JOIN {all_rows(data_type)} d ON {joined} WHERE d.connection_id = $1 AND d.valid_to IS NULL",
            params=[connection_id],
        ).to_arrow_table()
    finally:
        con.unregister("_cb_incoming")
    at = pc.index_in(positions, value_set=stored.column(0))
    for c in absent:
        field = table.schema.field(c)
        kept = pc.if_else(pc.is_valid(at), stored.column(c).take(at).cast(field.type), table.column(c))
        table = table.set_column(table.schema.get_field_index(c), field, kept)
    return table


ABSENT = b"connectbatch.absent"  # the schema metadata key parser/api.py marks them with


def end_rows(
    con: duckdb.DuckDBPyConnection,
    data_type: str,
    rows: list[tuple[int, int]],
    *,
    by_file: int,
    at: dt.datetime,
    reason: str,
) -> int:
    """End the current version of stored rows (file id, line): they stay, no longer current."""
    if not rows:
        return 0
    ended = pa.table(
        {"f": pa.array([r[0] for r in rows], pa.int64()), "l": pa.array([r[1] for r in rows], pa.int64())}
    )
    con.register("_cb_ended", ended)
    try:
        row = con.execute(
            f"UPDATE {data_table(data_type)} d SET valid_to = ?, superseded_by = ?, end_reason = ? "
            "FROM _cb_ended e WHERE d.file_id = e.f AND d.line = e.l AND d.valid_to IS NULL",
            [at, by_file, reason],
        ).fetchall()
        # rows of Parquet parts end in data_ends (a part is never rewritten)
        in_parts = con.execute(
            "INSERT INTO data_ends (file_id, line, valid_to, superseded_by, end_reason) "
            f"SELECT DISTINCT e.f, e.l, ?::TIMESTAMPTZ, ?::BIGINT, ?::VARCHAR FROM _cb_ended e "
            f"JOIN {parts.parts_view(data_type)} d ON d.file_id = e.f AND d.line = e.l "
            "WHERE d.valid_to IS NULL",
            [at, by_file, reason],
        ).fetchall()
    finally:
        con.unregister("_cb_ended")
    return _count(row) + _count(in_parts)


def end_missing(
    con: duckdb.DuckDBPyConnection,
    data_type: str,
    connection_id: int,
    keys: pa.Array,
    *,
    by_file: int,
    at: dt.datetime,
) -> int:
    """A full snapshot: end (as 'removed') every current row of the connection whose key the
    snapshot `keys` does not list. Returns how many items were removed."""
    dtype = schemas.get(data_type)
    if not dtype.key_columns:
        return 0
    key = '"' + dtype.key_columns[0] + '"'
    con.register("_cb_listed", pa.table({"k": keys}))
    try:
        row = con.execute(
            f"UPDATE {data_table(data_type)} SET valid_to = ?, superseded_by = ?, end_reason = 'removed' "
            f"WHERE connection_id = ? AND valid_to IS NULL AND file_id <> ? "
            f"AND {key} NOT IN (SELECT k FROM _cb_listed WHERE k IS NOT NULL)",
            [at, by_file, connection_id, by_file],
        ).fetchall()
        in_parts = con.execute(
            "INSERT INTO data_ends (file_id, line, valid_to, superseded_by, end_reason) "
            "SELECT file_id, line, ?::TIMESTAMPTZ, ?::BIGINT, 'removed' "
            f"FROM {parts.parts_view(data_type)} "
            f"WHERE connection_id = ? AND valid_to IS NULL AND file_id <> ? "
            f"AND {key} NOT IN (SELECT k FROM _cb_listed WHERE k IS NOT NULL)",
            [at, by_file, connection_id, by_file],
        ).fetchall()
    finally:
        con.unregister("_cb_listed")
    return _count(row) + _count(in_parts)


def _count(result: list[tuple[object, ...]]) -> int:
    """The row count an UPDATE or INSERT returns (fetched whole: a fetchone leaves the result
    open and the next statement on the connection fails)."""
    return int(str(result[0][0])) if result else 0
