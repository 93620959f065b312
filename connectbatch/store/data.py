"""Accepted rows of every data type, loaded straight from Arrow."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from connectbatch import schemas
from connectbatch.store.db import data_table


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
    """Append a parsed table; DuckDB scans the Arrow buffers directly (no Python rows)."""
    if table.num_rows == 0:
        return 0
    n = table.num_rows
    staged = (
        table.append_column("run_id", pa.repeat(pa.scalar(run_id, pa.int64()), n))
        .append_column("file_id", pa.repeat(pa.scalar(file_id, pa.int64()), n))
        .append_column("connection_id", pa.repeat(pa.scalar(connection_id, pa.int64()), n))
        .append_column("line", lines.cast(pa.int64()))
    )
    con.register("_cb_rows", staged)
    try:
        con.execute(f"INSERT INTO {data_table(data_type)} BY NAME SELECT * FROM _cb_rows")
    finally:
        con.unregister("_cb_rows")
    return int(n)


def existing_keys(
    con: duckdb.DuckDBPyConnection, data_type: str, connection_id: int, keys: pa.Array
) -> list[str]:
    """Which of `keys` (the data type's first key column) are already loaded for the connection."""
    dtype = schemas.get(data_type)
    if not dtype.key_columns or len(keys) == 0:
        return []
    key = '"' + dtype.key_columns[0] + '"'
    con.register("_cb_keys", pa.table({"k": keys}))
    try:
        rows = con.execute(
            f"SELECT DISTINCT d.{key} FROM {data_table(data_type)} d "
            f"JOIN _cb_keys k ON d.{key} = k.k WHERE d.connection_id = ?",
            [connection_id],
        ).fetchall()
    finally:
        con.unregister("_cb_keys")
    return [r[0] for r in rows]
