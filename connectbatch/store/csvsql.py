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


def column_cell(alias: str, column: schemas.Column) -> str:
    """A data-type column of relation `alias`, escaped when it holds text."""
    return cell(f"{alias}.{quote(column.name)}", column.name, column.duckdb_type == "VARCHAR")


def sql_path(path: Path) -> str:
    """A path as a DuckDB string literal body (COPY takes no parameter for its target)."""
    return str(path).replace("'", "''")
