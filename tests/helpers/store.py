"""Read-only looks into a test's DuckDB file, for assertions the services do not expose
(how many data rows a run left behind)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from connectbatch.services import Services
from connectbatch.store.db import all_rows


def count(services: Services, table: str, **where: Any) -> int:
    """Rows of `table` (a data type key such as "call_conversions", or a table name)
    matching column = value for each keyword."""
    try:
        name = all_rows(table)
    except KeyError:
        name = table
    clauses = " AND ".join(f"{column} = ?" for column in where) or "TRUE"
    with services.db.connect() as con:
        row = con.execute(f"SELECT count(*) FROM {name} WHERE {clauses}", list(where.values())).fetchone()
    assert row is not None
    return int(row[0])


def results_of(
    services: Services, connection: str, run_id: int
) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """The results CSV rows and the summary JSON written for the (single) file of a run."""
    files = [p for p in services.results_files(connection) if p.name.startswith(f"run{run_id}-")]
    csv_files = [p for p in files if p.name.endswith(".results.csv")]
    json_files = [p for p in files if p.name.endswith(".summary.json")]
    assert len(csv_files) == 1 and len(json_files) == 1, files
    return read_results(csv_files[0]), json.loads(json_files[0].read_text(encoding="utf-8"))


def read_results(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
