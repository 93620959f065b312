"""CSV written by DuckDB itself (`COPY ... TO`), made safe to open in a spreadsheet.

Exports, the call-data download and the data browsers stream rows straight from DuckDB to
a file, so `escaping.csv_cell` cannot run on each cell in Python; the same rule
(`FORMULA_PATTERN`) runs in SQL instead, in this one place.
"""

from __future__ import annotations

from pathlib import Path

from connectbatch import schemas
from connectbatch.escaping import FORMULA_PATTERN


def quote(name: str) -> str:
    """A column name as a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def cell(expression: str, name: str, text: bool = True) -> str:
    """A select item named `name`; text (partner data) that a spreadsheet would run as a
    formula gets a leading `'` (CSV injection), numbers and dates are left as they are."""
    if not text:
        return f"{expression} AS {quote(name)}"
    return (
        f"CASE WHEN regexp_matches({expression}, '{FORMULA_PATTERN}') THEN '''' || {expression} "
        f"ELSE {expression} END AS {quote(name)}"
    )


def iso_cell(expression: str, name: str) -> str:
    """A TIMESTAMPTZ as ISO 8601 in UTC, as the spec's dates are and a partner's system reads
    them back (`2026-12-05T14:05:09Z`, a fraction only when there is one): DuckDB's own text
    is `2026-12-05 14:05:09+00`, in the session's time zone."""
    text = f"strftime(timezone('UTC', {expression}), '%Y-%m-%dT%H:%M:%S.%f')"
    return f"regexp_replace({text}, '\\.?0*$', '') || 'Z' AS {quote(name)}"


def column_cell(alias: str, column: schemas.Column) -> str:
    """A data-type column of relation `alias`: text escaped, a time stamp in ISO 8601."""
    expression = f"{alias}.{quote(column.name)}"
    if column.duckdb_type == "TIMESTAMPTZ":
        return iso_cell(expression, column.name)
    return cell(expression, column.name, column.duckdb_type == "VARCHAR")


def sql_path(path: Path) -> str:
    """A path as a DuckDB string literal body (COPY takes no parameter for its target)."""
    return str(path).replace("'", "''")
