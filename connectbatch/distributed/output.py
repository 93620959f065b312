"""What a parse task leaves for the loader, next to the staged bytes.

`<staging>/out/<sha256>.<run id>/rows.parquet` holds the typed rows with their line numbers
and `meta.json` the rejects, the verdict and the rest of the parse result. `meta.json` is
written last, each file through a temporary name and a rename, so its presence means the
output is whole; a task that runs twice writes the same bytes again. Only `write`, `read`,
`remove` and `sweep` know the layout: object storage can replace the folder behind them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from connectbatch.parser.api import ParseResult, Reject
from connectbatch.pipeline.ingest import Computed
from connectbatch.pipeline.validation import ValidationReport
from connectbatch.store.db import private_dir

LINE_COLUMN = "__line"
META = "meta.json"
ROWS = "rows.parquet"


def folder(staging: Path, sha256: str, run_id: int) -> Path:
    return staging / "out" / f"{sha256}.{run_id}"


def write(staging: Path, sha256: str, run_id: int, computed: Computed) -> Path:
    """Write a computed file's output (atomically per file, meta last); returns its folder."""
    where = folder(staging, sha256, run_id)
    private_dir(where.parent)
    private_dir(where)
    meta: dict[str, Any] = {"refusal": computed.refusal}
    parsed = computed.parsed
    if parsed is not None and computed.report is not None:
        rows = parsed.table.append_column(LINE_COLUMN, parsed.lines)
        _atomic(where / ROWS, lambda path: pq.write_table(rows, path))
        meta.update(
            rejects=[[r.line, r.column, r.value, r.reason] for r in computed.rejects],
            parse_rejects=[[r.line, r.column, r.value, r.reason, r.spans] for r in parsed.rejects],
            unknown_columns=parsed.unknown_columns, encoding=parsed.encoding, header=parsed.header,
            reject_keys={str(k): v for k, v in parsed.reject_keys.items()}, preamble=parsed.preamble,
            reject_qualifiers={str(k): v for k, v in parsed.reject_qualifiers.items()},
            report=computed.report.to_json(), parser_rejected=computed.parser_rejected,
            refused_late=computed.refused_late,
        )  # fmt: skip
    text = json.dumps(meta)
    _atomic(where / META, lambda path: Path(path).write_text(text, encoding="utf-8"))
    return where


def read(staging: Path, sha256: str, run_id: int) -> Computed:
    """The output `write` left (FileNotFoundError when there is none, or not yet whole)."""
    where = folder(staging, sha256, run_id)
    meta = json.loads((where / META).read_text(encoding="utf-8"))
    if meta.get("report") is None:
        return Computed(refusal=meta.get("refusal") or "nothing was parsed")
    rows = pq.read_table(where / ROWS)
    lines = rows.column(LINE_COLUMN).combine_chunks()
    table = rows.drop_columns([LINE_COLUMN]).replace_schema_metadata(None)
    parsed = ParseResult(
        table=table, rejects=[Reject(*r) for r in meta["parse_rejects"]],
        unknown_columns=list(meta["unknown_columns"]), lines=lines, encoding=meta["encoding"],
        header=list(meta["header"]), reject_keys={int(k): v for k, v in meta["reject_keys"].items()},
        preamble=dict(meta["preamble"]),
        # an output written before VendorEventIds were kept has none
        reject_qualifiers={int(k): v for k, v in meta.get("reject_qualifiers", {}).items()},
    )  # fmt: skip
    return Computed(
        parsed, [Reject(*r) for r in meta["rejects"]], ValidationReport.from_json(meta["report"]),
        None, int(meta["parser_rejected"]), int(meta["refused_late"]),
    )  # fmt: skip


def remove(staging: Path, sha256: str, run_id: int) -> None:
    """Drop an output once it is loaded (best effort: a leftover is only disk space)."""
    where = folder(staging, sha256, run_id)
    for name in (META, ROWS):
        (where / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        where.rmdir()


def sweep(staging: Path, live_runs: set[int]) -> list[Path]:
    """Remove the outputs of runs not in `live_runs` (those In Progress): no loader reads
    them any more (a run interrupted by a killed coordinator is retried from the staged
    bytes; a task that ran again after its output was loaded wrote it once more). They are
    parsed copies of partner rows: left alone, they outlived the staging retention."""
    root = staging / "out"
    removed: list[Path] = []
    for where in sorted(root.iterdir()) if root.is_dir() else []:
        run = where.name.rpartition(".")[2]
        if run.isdigit() and int(run) not in live_runs:
            shutil.rmtree(where, ignore_errors=True)
            removed.append(where)
    return removed


def _atomic(target: Path, write_to: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    os.close(fd)
    try:
        write_to(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
