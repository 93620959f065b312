"""Results for the sender: a per-row results CSV and a JSON summary per processed file.

Written under `<home>/outbound/<connection id>/` so an outbound (Pull from us) connection,
the return e-mail and the UI's download button all serve the same files. The CSV uses the
partner's own column names for the key columns and the input's physical line numbers, so a
sender can find every row in the file they sent.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from connectbatch.escaping import FORMULA_PATTERN
from connectbatch.models import Connection, FileRecord, FileState
from connectbatch.parser.api import Reject
from connectbatch.store.db import private_dir

if TYPE_CHECKING:
    from connectbatch.pipeline.validation import ValidationReport

log = logging.getLogger("connectbatch.pipeline.results")


class RowStatus(StrEnum):
    """A row's status in the results CSV, as the sender reads it."""

    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    DUPLICATE = "DUPLICATE"  # the whole file was a duplicate
    QUARANTINED = "QUARANTINED"  # held for review: not loaded yet


# The status of a file's readable rows, by the file's outcome (otherwise ACCEPTED).
_ROW_STATUS = {FileState.QUARANTINED: RowStatus.QUARANTINED, FileState.DUPLICATE: RowStatus.DUPLICATE}


@dataclass
class Summary:
    run_id: int
    file_id: int
    file: str
    connection: str
    data_type: str
    status: FileState  # outcome of the file: loaded, rejected, duplicate, quarantined or failed
    rows_accepted: int = 0
    rows_rejected: int = 0
    actions_created: int = 0
    message: str | None = None
    validation: dict[str, object] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # time per pipeline stage
    finished_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())


def folder(outbound: Path, connection_id: int) -> Path:
    return outbound / str(connection_id)


def base_name(run_id: int, file_id: int, file_name: str) -> str:
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(file_name).name)[:80]
    return f"run{run_id}-file{file_id}-{stem}"


def write(
    outbound: Path,
    connection_id: int,
    summary: Summary,
    *,
    key_columns: list[str],
    accepted_keys: pa.Table | None,
    accepted_lines: pa.Array | None,
    rejects: Iterable[Reject],
    accepted_status: RowStatus = RowStatus.ACCEPTED,
    reject_keys: dict[int, str] | None = None,
) -> tuple[Path, Path]:
    """Write `<base>.results.csv` and `<base>.summary.json` atomically; return both paths."""
    target = private_dir(folder(outbound, connection_id))  # results are partners' data
    base = base_name(summary.run_id, summary.file_id, summary.file)
    parts = []
    by_line: dict[int, list[str]] = {}
    for r in rejects:
        where = f"{r.column}: " if r.column else ""
        shown = f" (value {r.value!r})" if r.value is not None else ""
        by_line.setdefault(r.line, []).append(f"{where}{r.reason}{shown}")
    if accepted_keys is not None and accepted_lines is not None and len(accepted_lines):
        accepted = pa.table(
            {
                "Line": accepted_lines.cast(pa.int64()),
                **{k: accepted_keys.column(k).cast(pa.string()) for k in key_columns},
            }
        )
        if by_line:  # a row parsed but not applied (action modifications) is reported once
            keep = pc.invert(pc.is_in(accepted["Line"], pa.array(list(by_line), pa.int64())))
            accepted = accepted.filter(keep)
        n = accepted.num_rows
        parts.append(
            accepted.append_column("Status", pa.repeat(pa.scalar(accepted_status.value), n)).append_column(
                "Reason", pa.repeat(pa.scalar(""), n)
            )
        )
    if by_line:
        parts.append(
            pa.table(
                {
                    "Line": pa.array(list(by_line), pa.int64()),
                    # the record's own key when it was readable (rejected for another field)
                    **{
                        k: pa.array(
                            [(reject_keys or {}).get(line) if i == 0 else None for line in by_line],
                            pa.string(),
                        )
                        for i, k in enumerate(key_columns)
                    },
                    "Status": pa.array([RowStatus.REJECTED.value] * len(by_line)),
                    "Reason": pa.array(["; ".join(r) for r in by_line.values()]),
                }
            )
        )
    if parts:
        table = pa.concat_tables(parts)
        table = table.take(pc.sort_indices(table, [("Line", "ascending")]))
    else:
        table = pa.table(
            {
                "Line": pa.array([], pa.int64()),
                **{k: pa.array([], pa.string()) for k in key_columns},
                "Status": pa.array([], pa.string()),
                "Reason": pa.array([], pa.string()),
            }
        )
    csv_path = target / f"{base}.results.csv"
    with _atomic(csv_path, "wb") as fh:
        pacsv.write_csv(neutralise_formulas(table), fh, pacsv.WriteOptions(quoting_style="needed"))
    json_path = target / f"{base}.summary.json"
    with _atomic(json_path, "w") as fh:
        json.dump(asdict(summary), fh, indent=2, default=str)
    return csv_path, json_path


def neutralise_formulas(table: pa.Table) -> pa.Table:
    """Text cells a spreadsheet would run as a formula (`=HYPERLINK(...)`, `+1`, `@SUM`, ...)
    get a leading `'`: the partner's keys and header names come back to them, and to us, in
    this file, and opening it must not execute anything (CSV injection)."""
    for index, column_field in enumerate(table.schema):
        if not pa.types.is_string(column_field.type) and not pa.types.is_large_string(column_field.type):
            continue
        column = table.column(index)
        risky = pc.match_substring_regex(column, FORMULA_PATTERN)
        quoted = pc.binary_join_element_wise(pa.scalar("'"), column, "")
        table = table.set_column(index, column_field, pc.if_else(risky, quoted, column))
    return table


def write_outcome(
    outbound: Path,
    connection: Connection,
    run_id: int,
    record: FileRecord,
    outcome: FileState,
    *,
    table: pa.Table | None = None,
    lines: pa.Array | None = None,
    rejects: list[Reject] | None = None,
    key_columns: list[str] | None = None,
    report: ValidationReport | None = None,
    message: str | None = None,
    seconds: dict[str, float] | None = None,
    actions_created: int = 0,
    reject_keys: dict[int, str] | None = None,
) -> None:
    """The sender's answer for one file of a run, whatever its outcome. A results file that
    cannot be written is logged, not raised: the load it describes has already committed."""
    rejected_lines = {r.line for r in rejects or []}
    accepted = 0
    if table is not None and outcome == FileState.LOADED:
        accepted = table.num_rows
        if rejected_lines and lines is not None:  # parsed, not applied (action modifications)
            refused = pa.array(sorted(rejected_lines), lines.type)
            accepted -= pc.sum(pc.is_in(lines, value_set=refused)).as_py() or 0
    summary = Summary(
        run_id=run_id, file_id=record.id, file=record.name, connection=connection.name,
        data_type=connection.data_type, status=outcome,
        rows_accepted=accepted,
        rows_rejected=len(rejected_lines), actions_created=actions_created,
        message=message,
        validation=(
            {"success": report.success, "critical_failures": report.critical_failures,
             "warnings": report.warnings} if report is not None else {}
        ),
        seconds=seconds or {},
    )  # fmt: skip
    status = _ROW_STATUS.get(outcome, RowStatus.ACCEPTED)
    try:
        write(
            outbound, connection.id, summary, key_columns=key_columns or [],
            accepted_keys=table, accepted_lines=lines, rejects=rejects or [],
            accepted_status=status, reject_keys=reject_keys,
        )  # fmt: skip
    except OSError:
        log.exception("could not write results", extra={"run_id": run_id})


class _atomic:
    """Write to a temporary file beside the target and rename, so a reader (an outbound
    client downloading results) never sees half a file."""

    def __init__(self, path: Path, mode: str) -> None:
        self.path = path
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        self.tmp = Path(tmp)
        self.fh = os.fdopen(fd, mode) if "b" in mode else os.fdopen(fd, mode, encoding="utf-8", newline="")

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self.fh

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.fh.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def list_files(outbound: Path, connection_id: int) -> list[Path]:
    target = folder(outbound, connection_id)
    if not target.exists():
        return []
    return sorted(p for p in target.iterdir() if p.is_file() and not p.name.startswith(".tmp-"))
