"""Data exports for outbound ("Pull from us") connections, written by DuckDB itself."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from connectbatch import schemas
from connectbatch.escaping import FORMULA_PATTERN
from connectbatch.store.db import data_table


def export_csv(
    con: duckdb.DuckDBPyConnection, data_type: str, start: dt.datetime, end: dt.datetime, target: Path
) -> int:
    """Rows of `data_type` whose event (or load) time is in [start, end), with the status
    and current amount of their action where they have one. Returns the row count."""
    dtype = schemas.get(data_type)
    columns = ", ".join(_cell(c) for c in dtype.columns)
    when = 'd."EventDate"' if "EventDate" in dtype.column_names else "r.started_at"
    action_columns = ""
    join = "JOIN runs r ON r.id = d.run_id"
    if dtype.action_columns is not None:
        action_columns = (
            ", 'A-' || lpad(CAST(a.id AS VARCHAR), 6, '0') AS \"ActionId\", a.status AS \"ActionStatus\", "
            'a.amount AS "ActionAmount", a.lock_at AS "LockDate"'
        )
        join += " LEFT JOIN actions a ON a.file_id = d.file_id AND a.line = d.line"
    query = (
        f"SELECT {columns}{action_columns} FROM {data_table(data_type)} d {join} "
        f"WHERE {when} >= ? AND {when} < ? ORDER BY d.file_id, d.line"
    )
    relation = con.execute(f"SELECT count(*) FROM ({query})", [start, end]).fetchone()
    count = int(relation[0]) if relation else 0
    tmp = target.with_name("." + target.name + ".tmp")
    con.execute(
        f"COPY ({query}) TO '{_sql_path(tmp)}' (HEADER, DELIMITER ',')",
        [start, end],
    )
    tmp.replace(target)
    return count


def _cell(column: schemas.Column) -> str:
    """A column for the export; text columns (partner data) that a spreadsheet would run as a
    formula get a leading `'` (CSV injection), numbers and dates are left as they are."""
    name = f'd."{column.name}"'
    if column.duckdb_type != "VARCHAR":
        return name
    return (
        f"CASE WHEN regexp_matches({name}, '{FORMULA_PATTERN}') THEN '''' || {name} "
        f'ELSE {name} END AS "{column.name}"'
    )


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
