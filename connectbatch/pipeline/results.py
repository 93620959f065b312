"""Results for the sender: a per-row results CSV and a JSON summary per processed file.

Written under `<home>/outbound/<connection id>/`: an outbound connection, the return e-mail
and the UI's download button serve the same files; a load's own waits there owed (`owed`).

The results CSV, as a partner's system parses it:

* Columns: `Line` (the input's physical line; the header is line 1), the data type's key
  column(s) under the partner's own header name exactly as it appeared in the file (a mapped
  `session` stays `session`, a lower-case `callsessionid` stays so; the schema name when no
  header could be read), `ActionId` (types that create actions: `A-000123`, the id pending
  actions and action-modification files use), `Status`, `Reason`.
* One line per data row: `ACCEPTED` (loaded; `Reason` is empty, or says how the action was
  created, e.g. LOCKED for an event older than the lock period), `REJECTED` (`Reason` names
  the column and the problem), `QUARANTINED` (held for review: a row that failed an
  expectation names it and the row's value, every other row the lines that failed, and the
  summary those lines; `results_held`; nothing is loaded until a reviewer releases it).
* A file-level outcome is one line with `Line` 0 and empty key cells: `DUPLICATE` (the same
  bytes were already received: nothing done), `FILE_REJECTED` (the file as a whole is
  unreadable, e.g. a wrong header, or every row was rejected, each listed too; or a held batch
  a reviewer discarded: rewritten then, Line 0 saying so with the note, rejects kept), `FAILED`
  (our side failed; the file may be retried).
  A file of no data rows (only its header) is answered by one Line 0 `ACCEPTED` row saying
  so (`NO_ROWS`, the summary's message too): a results file is never empty.
* Every text cell is escaped like `escaping.csv_cell` (a leading `'` before a cell a
  spreadsheet would run as a formula; `+15551234567` or `-12.50` comes back as sent).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from connectbatch import schemas
from connectbatch.escaping import csv_cell
from connectbatch.models import Connection, FileRecord, FileState
from connectbatch.parser.api import Reject, RejectKeys
from connectbatch.pipeline import owed, results_csv
from connectbatch.pipeline.results_csv import neutralise_formulas as neutralise_formulas  # dry runs, tests
from connectbatch.pipeline.results_held import HeldReasons, held_reasons, loaded_reasons
from connectbatch.store.db import private_dir

if TYPE_CHECKING:
    from connectbatch.pipeline.validation import ValidationReport

log = logging.getLogger("connectbatch.pipeline.results")


class RowStatus(StrEnum):
    """A row's status in the results CSV, as the sender reads it."""

    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    DUPLICATE = "DUPLICATE"  # the whole file was a duplicate (a Line 0 row)
    QUARANTINED = "QUARANTINED"  # held for review: not loaded yet
    FILE_REJECTED = "FILE_REJECTED"  # the file as a whole is unreadable (a Line 0 row)
    FAILED = "FAILED"  # our side failed on the file (a Line 0 row)


# The status of a file's readable rows, by the file's outcome (otherwise ACCEPTED).
_ROW_STATUS = {FileState.QUARANTINED: RowStatus.QUARANTINED, FileState.DUPLICATE: RowStatus.DUPLICATE}
# File outcomes answered by a single Line 0 row (nothing of the file was read or done).
_FILE_STATUS = {
    FileState.DUPLICATE: RowStatus.DUPLICATE,
    FileState.REJECTED: RowStatus.FILE_REJECTED,
    FileState.FAILED: RowStatus.FAILED,
    FileState.DISCARDED: RowStatus.FILE_REJECTED,  # a held batch a reviewer refused
}
FILE_LINE = 0  # the `Line` of a row about the whole file
NO_ROWS = "the file held no data rows, only its header: nothing was loaded"
ACTION_ID = "ActionId"


def partner_names(
    header: list[str] | None, column_map: dict[str, str] | None, columns: list[str]
) -> dict[str, str]:
    """Schema column -> the file's own header name for it, matched as the parser matches
    (trimmed, case-insensitive, `column_map` partner name -> schema name first). A column the
    header does not name keeps its schema name."""
    renames = {k.strip().lower(): v.strip().lower() for k, v in (column_map or {}).items()}
    wanted = {c.lower(): c for c in columns}
    found: dict[str, str] = {}
    for raw in header or []:
        key = raw.strip().lower()
        ours = wanted.get(renames.get(key, key))
        if ours is not None and ours not in found:
            found[ours] = raw
    return {c: found.get(c, c) for c in columns}


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
    actions_changed: int = 0  # existing actions modified, reversed or re-pointed (runs.actions_changed)
    message: str | None = None
    # the file's columns that were not read (not in the data type's format, not mapped): a
    # partner whose revenue column is misnamed learns why every amount is empty
    ignored_columns: list[str] = field(default_factory=list)
    validation: dict[str, object] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # time per pipeline stage
    finished_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())


def folder(outbound: Path, connection_id: int) -> Path:
    return outbound / str(connection_id)


def base_name(run_id: int, file_id: int, file_name: str) -> str:
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(file_name).name)[:80]
    return f"run{run_id}-file{file_id}-{stem}"


@dataclass(frozen=True)
class RowActions:
    """The actions a load created, by the input line they came from: the results file
    names each accepted row's `ActionId`, and a note when the action was not created
    PENDING (e.g. LOCKED: its event was older than the lock period).

    Columns `line` (int64), `label` ("A-000123") and `note` (null when PENDING), as
    store/actions.of_file_by_line reads them: a million rows stay in Arrow, no Python dict."""

    table: pa.Table

    @classmethod
    def of(cls, labels: dict[int, str], notes: dict[int, str] | None = None) -> RowActions:
        """From plain mappings line -> label and line -> note (tests, small batches)."""
        notes = notes or {}
        lines = list(labels)
        return cls(
            pa.table(
                {
                    "line": pa.array(lines, pa.int64()),
                    "label": pa.array([labels[n] for n in lines], pa.string()),
                    "note": pa.array([notes.get(n) for n in lines], pa.string()),
                }
            )
        )

    def for_lines(self, lines: pa.Array) -> tuple[pa.Array, pa.Array]:
        """The label and note of each of `lines`, in their order (null where none). The usual
        case, the actions of a whole file read in line order for the same lines, needs no
        lookup (issue 13: the hash lookup took ~0.4 s of a 1M-row file's results)."""
        stored = self.table.column("line")
        same = len(stored) == len(lines) and stored.null_count == 0 and lines.null_count == 0
        if same and pc.all(pc.equal(stored, lines)).as_py() is True:
            return self.table.column("label"), self.table.column("note")
        at = pc.index_in(lines, value_set=stored.combine_chunks())
        return pc.take(self.table.column("label"), at), pc.take(self.table.column("note"), at)


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
    reject_qualifiers: dict[int, str] | None = None,
    key_names: dict[str, str] | None = None,
    actions: RowActions | None = None,
    with_action_id: bool = False,
    accepted_reason: str = "",
    file_status: RowStatus | None = None,
    line_reasons: dict[int, str] | None = None,
    owing: list[Path] | None = None,
) -> tuple[Path, Path]:
    """Write `<base>.results.csv` and `<base>.summary.json` atomically; return both paths
    (with `owing`, under hidden owed names, listed there: pipeline/owed.py). `key_names`: the
    partner's header per key column; `actions`: the ActionId per accepted line (a column when
    `with_action_id`); `accepted_reason`: every readable row's Reason (a held batch: why);
    `file_status`: one Line 0 row for the whole file; `line_reasons`: some rows' Reason by
    line instead (a held batch: which expectation a row failed, and its value)."""
    target = private_dir(folder(outbound, connection_id))  # results are partners' data
    base = base_name(summary.run_id, summary.file_id, summary.file)
    names = _output_names(key_columns, key_names or {}, with_action_id)
    parts = []
    by_line: dict[int, list[str]] = {}
    for r in rejects:
        column = (key_names or {}).get(r.column, r.column) if r.column else None
        where = f"{column}: " if column else ""
        shown = f" (value {r.value!r})" if r.value is not None else ""
        by_line.setdefault(r.line, []).append(f"{where}{r.reason}{shown}")
    parsed = None  # every parsed row: the rows rejected after parsing take their keys from it
    if accepted_keys is not None and accepted_lines is not None and len(accepted_lines):
        accepted = parsed = pa.table(
            {
                "Line": accepted_lines.cast(pa.int64()),
                **{k: accepted_keys.column(k).cast(pa.string()) for k in key_columns},
            }
        )
        if by_line:  # a row parsed but not applied (action modifications) is reported once
            keep = pc.invert(pc.is_in(accepted["Line"], pa.array(list(by_line), pa.int64())))
            accepted = accepted if pc.all(keep).as_py() else accepted.filter(keep)  # no copy for none
        n = accepted.num_rows
        reasons = pa.repeat(pa.scalar(accepted_reason), n)
        if line_reasons:
            at = pc.index_in(accepted["Line"], value_set=pa.array(list(line_reasons), pa.int64()))
            own = pc.take(pa.array(list(line_reasons.values()), pa.string()), at)
            reasons = pc.coalesce(own, reasons)
        if actions is not None:
            labels, notes = actions.for_lines(accepted["Line"].combine_chunks())
            reasons = pc.coalesce(notes, reasons)
        else:
            labels = pa.nulls(n, pa.string())
        if with_action_id:
            accepted = accepted.append_column(ACTION_ID, labels)
        status = pa.repeat(pa.scalar(accepted_status.value), n)
        parts.append(accepted.append_column("Status", status).append_column("Reason", reasons))
    if by_line:
        parts.append(
            pa.table(
                {
                    "Line": pa.array(list(by_line), pa.int64()),
                    **results_csv.rejected_keys(
                        list(by_line), key_columns, parsed, [reject_keys, reject_qualifiers]
                    ),
                    **({ACTION_ID: pa.nulls(len(by_line), pa.string())} if with_action_id else {}),
                    "Status": pa.array([RowStatus.REJECTED.value] * len(by_line)),
                    "Reason": pa.array(["; ".join(r) for r in by_line.values()]),
                }
            )
        )
    if file_status is None and not parts:  # no row at all (a header-only file): Line 0 says so
        file_status, summary.message = accepted_status, summary.message or NO_ROWS
    if file_status is not None:
        parts.append(
            pa.table(
                {
                    "Line": pa.array([FILE_LINE], pa.int64()),
                    **{k: pa.nulls(1, pa.string()) for k in key_columns},
                    **({ACTION_ID: pa.nulls(1, pa.string())} if with_action_id else {}),
                    "Status": pa.array([file_status.value]),
                    "Reason": pa.array([summary.message or ""], pa.string()),
                }
            )
        )
    table = pa.concat_tables([p.select(list(parts[0].column_names)) for p in parts])
    order = results_csv.line_order(table)
    owe = "" if owing is None else owed.OWED_PREFIX
    csv_path, json_path = target / f"{owe}{base}.results.csv", target / f"{owe}{base}.summary.json"
    with _atomic(csv_path, "wb") as fh:
        results_csv.write(table, order, names, fh)
    with _atomic(json_path, "w") as fh:
        json.dump(asdict(summary), fh, indent=2, default=str)
    if owing is not None:
        owing += [csv_path, json_path]
    return csv_path, json_path


def _output_names(key_columns: list[str], key_names: dict[str, str], with_action_id: bool) -> list[str]:
    """The results file's header: the partner's names for the key columns (escaped like any
    cell: a header is partner text too), unless one would collide with a column of ours."""
    fixed = ["Line", *([ACTION_ID] if with_action_id else []), "Status", "Reason"]
    taken = {f.lower() for f in fixed}
    keys = []
    for k in key_columns:
        name = key_names.get(k, k)
        if name.strip().lower() in taken or not name.strip():
            name = k
        taken.add(name.strip().lower())
        keys.append(csv_cell(name))
    return ["Line", *keys, *([ACTION_ID] if with_action_id else []), "Status", "Reason"]


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
    actions_changed: int = 0,
    read: RejectKeys | None = None,
    header: list[str] | None = None,
    actions: RowActions | None = None,
    ignored: Sequence[str] = (),
    owing: list[Path] | None = None,
    validated: tuple[pa.Table, pa.Array] | None = None,
) -> str | None:
    """The sender's answer for one file of a run, whatever its outcome; why it could not be
    written (logged, not raised), or None; `owing` as `write`'s. `header` is the file's own
    (the keys come back under the partner's names); `actions` the ActionIds; `read` what the
    parser read of the keys of the rows it refused (ParseResult.read_of_rejects); `ignored` the
    file's columns not read (ParseResult.unknown_columns); `validated` the batch `report`
    judged (rows, lines) when `table` is what a release loaded of it."""
    rejected_lines, accepted, loaded = {r.line for r in rejects or []}, 0, outcome == FileState.LOADED
    if table is not None and loaded:
        accepted = table.num_rows
        if rejected_lines and lines is not None:  # parsed, not applied (action modifications)
            refused = pa.array(sorted(rejected_lines), lines.type)
            accepted -= pc.sum(pc.is_in(lines, value_set=refused)).as_py() or 0
    summary = Summary(
        run_id=run_id, file_id=record.id, file=record.name, connection=connection.name,
        data_type=connection.data_type, status=outcome, rows_accepted=accepted,
        rows_rejected=len(rejected_lines), actions_created=actions_created,
        actions_changed=actions_changed, message=message, ignored_columns=list(ignored),
        validation=(
            {"success": report.success, "critical_failures": report.critical_failures,
             "warnings": report.warnings} if report is not None else {}
        ),
        seconds=seconds or {},
    )  # fmt: skip
    dtype = _data_type(connection.data_type)
    keys = key_columns if key_columns is not None else list(dtype.key_columns if dtype else ())
    status = _ROW_STATUS.get(outcome, RowStatus.ACCEPTED)
    columns = list(dict.fromkeys([*keys, *(dtype.column_names if dtype else ())]))
    names = partner_names(header, connection.column_map, columns)  # keys and checked columns
    held = HeldReasons("", loaded_reasons(report, table, lines, names, validated) if loaded else {})
    if outcome == FileState.QUARANTINED:
        held = held_reasons(report, table, lines, names, message or "")
        held.describe(summary, report)
    file_status = _FILE_STATUS.get(outcome) if table is None else None
    try:
        write(
            outbound, connection.id, summary, key_columns=keys,
            accepted_keys=table, accepted_lines=lines, rejects=rejects or [],
            accepted_status=status, reject_keys=read.keys if read else None,
            reject_qualifiers=read.qualifiers if read else None,
            key_names={k: names[k] for k in keys}, actions=actions,
            with_action_id=bool(dtype and dtype.action_columns is not None),
            accepted_reason=held.batch, file_status=file_status, line_reasons=held.by_line,
            owing=owing,
        )  # fmt: skip
    except OSError as exc:
        log.exception("could not write results", extra={"run_id": run_id})
        return str(exc)
    return None


def _data_type(key: str) -> schemas.DataType | None:
    try:
        return schemas.get(key)
    except LookupError:
        return None


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
        try:
            if exc_type is None:
                os.replace(self.tmp, self.path)  # fails on a folder of that name, say
        finally:
            self.tmp.unlink(missing_ok=True)  # gone once renamed; never left behind


def list_files(outbound: Path, connection_id: int) -> list[Path]:
    target = folder(outbound, connection_id)
    if not target.exists():
        return []
    hidden = (".tmp-", owed.OWED_PREFIX)  # being written, or owed (not answered yet)
    return sorted(p for p in target.iterdir() if p.is_file() and not p.name.startswith(hidden))


# The results-file header and atomic writer, shared with the dry-run answer (pipeline/dryrun.py).
output_names = _output_names
atomic = _atomic
