"""The compute half of a file: parse and validate the staged bytes, with no database.

Embedded mode runs it inside `Ingestor.compute_file`, right before the commit half
(`Ingestor.commit`); distributed mode runs it on a worker (connectbatch/distributed), where
the "already loaded keys" check, which needs the database, waits for load time
(`recheck_loaded`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pyarrow as pa

from connectbatch import schemas
from connectbatch.errors import ConnectBatchError
from connectbatch.models import Connection
from connectbatch.parser import api as csvparse
from connectbatch.parser.api import Reject
from connectbatch.parser.options import ParseOptions
from connectbatch.pipeline import late, load, validation
from connectbatch.settings import Settings
from connectbatch.store import mappings as mapping_store

if TYPE_CHECKING:
    from connectbatch.pipeline.stream import Streamed


class Laps(Protocol):
    """The ingest stopwatch: the stage under way, and seconds per finished stage."""

    step: str

    def lap(self, name: str) -> None: ...


@dataclass
class Computed:
    """What parsing and validating one file gave, before any database write: the batch, its
    rejects and verdict, or why the file was refused as a whole (`refusal`)."""

    parsed: csvparse.ParseResult | None = None
    rejects: list[Reject] = field(default_factory=list)
    report: validation.ValidationReport | None = None
    refusal: str | None = None
    parser_rejected: int = 0  # lines of the records the parser rejected (the reject-rate rule's)
    refused_late: int = 0  # rows the late-events policy refused
    # a big file streamed (pipeline/stream.py): its rows are in this Parquet file, and
    # `parsed.table` holds only the columns validation and the results file read
    part: Streamed | None = None
    # the database's write mark before the "already loaded" check (`commit.still_new`)
    checked: tuple[int, int] | None = None


def compute(
    settings: Settings,
    connection: Connection,
    path: Path,
    saved: mapping_store.SavedMapping | None,
    now: dt.datetime,
    clock: Laps,
    already_loaded: Callable[[schemas.DataType, pa.Table], list[str]] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    mark: tuple[int, int] | None = None,
) -> Computed:
    """The compute half of a file: parse and validate the staged bytes, with no database.
    `already_loaded` answers which keys the connection has loaded before; without it (a
    distributed worker) that check waits for load time (`recheck_loaded`). `mark`: the
    database's write mark taken before that check, kept as `Computed.checked`."""
    dtype = schemas.get(connection.data_type)
    clock.step = "parse"
    try:
        options = ParseOptions(
            encoding=connection.encoding, column_map=connection.column_map or None,
            delimiter=connection.delimiter, timezone=connection.timezone,
            max_bytes=settings.max_file_bytes, progress=on_progress,
            constants=saved.constants if saved is not None and saved.constants else None,
        )  # fmt: skip
        parsed = csvparse.parse_file(path, dtype.key, options=options, mapped=True)  # staged: ours
    except ConnectBatchError as exc:
        return Computed(refusal=str(exc))
    clock.lap("parse")
    clock.step = "validate"
    parser_rejected = parsed.lines_rejected  # the reject-rate rule judges the parser's own
    parsed, refused = late.refuse(parsed, connection, now)  # late-events policy
    rejects = list(parsed.rejects)  # loading adds the rows it could not apply
    already: list[str] = []
    # repeated keys fail validation only where repeats are refused (not catalogs, not
    # modification events, not a connection in supersede mode)
    if already_loaded is not None and load.refuses_repeats(dtype, connection) and parsed.table.num_rows:
        already = already_loaded(dtype, parsed.table)
    report = validate_parsed(settings, dtype, parsed, parser_rejected, already, now)
    late.judge(report, parsed.table, connection, now, refused)
    clock.lap("validate")
    return Computed(parsed, rejects, report, None, parser_rejected, refused, checked=mark)


def recheck_loaded(
    settings: Settings,
    connection: Connection,
    computed: Computed,
    already: list[str],
    now: dt.datetime,
) -> Computed:
    """The verdict again, at load time, for a batch computed without the "already loaded"
    check that found keys the connection has loaded (distributed mode: the worker could not
    look). Without such keys the worker's verdict is the one this would give."""
    if not already or computed.parsed is None:
        return computed
    dtype = schemas.get(connection.data_type)
    report = validate_parsed(settings, dtype, computed.parsed, computed.parser_rejected, already, now)
    late.judge(report, computed.parsed.table, connection, now, computed.refused_late)
    return replace(computed, report=report)


def validate_parsed(
    settings: Settings,
    dtype: schemas.DataType,
    parsed: csvparse.ParseResult,
    rows_rejected: int,
    already: list[str],
    now: dt.datetime,
) -> validation.ValidationReport:
    """The verdict on a parsed batch with the ingest's settings (whole or streamed parse)."""
    return validation.validate(
        parsed.table, dtype.key, rows_rejected=rows_rejected, already_loaded=already,
        now=now, max_age_days=settings.validation_max_age_days,
        max_reject_rate=settings.max_reject_rate, lines=parsed.lines,
    )  # fmt: skip
