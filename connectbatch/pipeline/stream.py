"""The big-file path: parse -> Parquet part -> validate -> load in bounded memory (issue 13).

A whole parse holds the file's typed table (~1.4x the file for call conversions), and with
validation, actions and the results file on top an ingest peaked at ~2.3x the file. A file of
STREAM_MIN_BYTES or more is streamed instead, when its connection's mode allows (`streams`):

1. `parser.batches` parses it a batch of ~32 MB at a time (the next batch parses on another
   thread while this one is written), and each batch goes, as the store keeps rows
   (`data.staged_rows`), into one Parquet file beside the parts (`parts.stream_path`) through
   one `ParquetWriter`, then is dropped: the typed table is never whole in memory.
2. Validation reads back only the columns the data type's suite, its key and its event date
   need, and runs the same `validate` on them as on a whole parse, so the report is the
   one a whole parse gives by construction (same values, same rows, same lines); the late
   events' warning and the "already loaded" keys the same way.
3. The load adopts the written file as the file's part (`data.adopt_rows`, in the load's
   transaction: renamed, counted at commit, deleted on rollback) and DuckDB makes the actions
   from it as before; the results file needs only the keys and lines read back in 2.
   A held batch (a critical expectation failed) is read back whole for the quarantine, as
   today. Whatever happens, the written file does not outlive the ingest (`Streamed.discard`;
   after a crash, `parts.remove_orphans`).

Modes that compare incoming rows with stored ones row by row keep the whole parse: action
modifications, merges of repeated keys (catalogs, `supersede`) and the late-events `refuse`
policy (which filters the batch before validation).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from connectbatch import schemas
from connectbatch.errors import ConnectBatchError
from connectbatch.models import Connection, FileRecord, LateEvents, Run
from connectbatch.parser import batches
from connectbatch.parser.api import ParseResult, Reject
from connectbatch.parser.options import ParseOptions
from connectbatch.pipeline import late, load, progress
from connectbatch.pipeline.compute import Computed, Laps, recheck_loaded, validate_parsed
from connectbatch.pipeline.validation import load_suite
from connectbatch.pipeline.validation.suites import columns as expectation_columns
from connectbatch.settings import Settings, parse_threads
from connectbatch.store import Database, parts
from connectbatch.store import data as data_store
from connectbatch.store import mappings as mapping_store

if TYPE_CHECKING:
    from connectbatch.pipeline.commit import RunEnd, Stopwatch
    from connectbatch.pipeline.ingest import Ingestor

__all__ = [
    "STREAM_MIN_BYTES", "Streamed", "compute", "ingest", "plan", "recheck", "streams", "whole", "will_stream",
]  # fmt: skip

# A staged file of this many bytes or more streams (~170,000 call-conversion rows); smaller
# ones keep the whole parse, which costs them nothing extra. Tests lower it.
STREAM_MIN_BYTES = 64 * 1024 * 1024
_NO_LINES = pa.Array.from_buffers(pa.int64(), 0, [None, pa.py_buffer(b"")])  # no values copied
_STORED = ("run_id", "file_id", "connection_id", "line")  # columns staged_rows adds


@dataclass
class Streamed:
    """The Parquet file a streamed ingest writes its rows to, and how many it holds."""

    path: Path
    rows: int = 0

    def discard(self) -> None:
        """Delete the written file unless the load made it a part (then it is renamed)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def streams(dtype: schemas.DataType, connection: Connection) -> bool:
    """Whether the connection's mode lets a file of this data type stream (module docstring)."""
    return (
        dtype.key != "action_modifications"
        and not load.merges_repeats(dtype, connection)
        and connection.late_events is not LateEvents.REFUSE
    )


def will_stream(connection: Connection, size: int) -> bool:
    """Whether a staged file of `size` bytes streams (else: the whole-parse path, for a small
    file or a mode that cannot stream). Decided before anything is parsed."""
    return size >= STREAM_MIN_BYTES and streams(schemas.get(connection.data_type), connection)


def plan(db: Database, connection: Connection, file_id: int, size: int) -> Streamed | None:
    """Where the file streams to, or None when it takes the whole-parse path (`will_stream`)."""
    if not will_stream(connection, size):
        return None
    dtype = schemas.get(connection.data_type)
    with db.connect() as con:
        return Streamed(parts.stream_path(con, dtype.key, file_id))


def ingest(
    ingestor: Ingestor,
    run: Run,
    connection: Connection,
    record: FileRecord,
    path: Path,
    saved: mapping_store.SavedMapping | None,
    clock: Stopwatch,
    part: Streamed,
    end: RunEnd | None = None,
) -> FileRecord:
    """`Ingestor._process` for a big file: `compute` here, then the ingestor's own `commit`
    (the load adopts `part`); the written file never outlives it (`Streamed.discard`)."""
    try:
        computed = compute(
            ingestor.settings, connection, path, saved, ingestor.clock(), clock, part,
            run_id=run.id, file_id=record.id,
            already_loaded=lambda dtype, table: ingestor._existing_keys(connection, dtype, table),
            # called through the module: the crash-recovery test hooks progress.update
            on_progress=lambda done, rows: progress.update(run.id, done, rows),
            mark=ingestor.db.write_mark(),  # before the "already loaded" check (`commit.still_new`)
        )  # fmt: skip
        return ingestor.commit(run, connection, record, computed, clock, end)
    finally:
        part.discard()  # adopted as a part by the load (renamed), or not needed any more


def compute(
    settings: Settings,
    connection: Connection,
    path: Path,
    saved: mapping_store.SavedMapping | None,
    now: dt.datetime,
    clock: Laps,
    part: Streamed,
    *,
    run_id: int,
    file_id: int,
    already_loaded: Callable[[schemas.DataType, pa.Table], list[str]] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    mark: tuple[int, int] | None = None,
) -> Computed:
    """`compute.compute` for a big file: the same Computed, except that `parsed.table` holds
    only the columns validation and the results file read (the rows are in `part`)."""
    dtype = schemas.get(connection.data_type)
    clock.step = "parse"
    options = ParseOptions(
        encoding=connection.encoding, column_map=connection.column_map or None,
        delimiter=connection.delimiter, timezone=connection.timezone,
        max_bytes=settings.max_file_bytes,
        constants=saved.constants if saved is not None and saved.constants else None,
    )  # fmt: skip
    try:
        parsed = _write(part, path, dtype, options, connection.id, run_id, file_id, on_progress)
    except ConnectBatchError as exc:
        part.discard()
        return Computed(refusal=str(exc))
    except BaseException:
        part.discard()
        raise
    _give_back()
    clock.lap("parse")
    clock.step = "validate"
    parser_rejected = parsed.lines_rejected
    already: list[str] = []
    if already_loaded is not None and load.refuses_repeats(dtype, connection) and parsed.table.num_rows:
        already = already_loaded(dtype, parsed.table)
    report = validate_parsed(settings, dtype, parsed, parser_rejected, already, now)
    late.judge(report, parsed.table, connection, now, 0)
    # from here on only the keys (results file), the event dates (late locks) and the values
    # of rows a warning named (their results lines) are read: the other columns go before
    # the load's own memory peak
    warned = [c for o in report.outcomes if not o.success and o.severity == "warning" for c in o.columns]
    after = [*dtype.key_columns, *(dtype.action_columns or ()), *warned]
    parsed = replace(parsed, table=parsed.table.select([c for c in parsed.table.column_names if c in after]))
    _give_back()
    clock.lap("validate")
    return Computed(parsed, list(parsed.rejects), report, None, parser_rejected, 0, part=part, checked=mark)


def _write(
    part: Streamed,
    path: Path,
    dtype: schemas.DataType,
    options: ParseOptions,
    connection_id: int,
    run_id: int,
    file_id: int,
    on_progress: Callable[[int, int], None] | None,
) -> ParseResult:
    """Parse the file batch by batch into `part`; the parse result of the whole file with
    only the columns `read_back` names in its table."""
    rejects: list[Reject] = []
    outside: list[Reject] = []
    keys: dict[int, str] = {}
    events: dict[int, str] = {}  # the rejected rows' VendorEventIds (reject_qualifiers)
    shared: ParseResult | None = None
    writer: pq.ParquetWriter | None = None
    wanted = read_back(dtype)
    kept: list[pa.Table] = []  # the columns validation and results read, batch by batch
    lines: list[pa.Array] = []

    def ready(batch: batches.Batch) -> batches.Batch:
        """On the parser's thread, while the batch before is written: the rows as stored,
        and the columns kept, copied to exactly their size (the parser's buffers, grown by
        doubling, go with the batch)."""
        parsed = batch.parsed
        staged = data_store.staged_rows(
            parsed.table, parsed.lines, run_id=run_id, file_id=file_id, connection_id=connection_id
        )
        narrow = _compact(parsed.table.select([c for c in parsed.table.column_names if c in wanted]))
        return _Ready(**vars(batch), staged=staged, kept=narrow, lines=_compact_array(parsed.lines))

    try:
        for batch in batches.parse_file_batches(path, dtype.key, options=options, mapped=True, then=ready):
            assert isinstance(batch, _Ready)
            parsed = batch.parsed
            if shared is None:  # what every batch shares (not its rows: they are dropped)
                shared = replace(
                    parsed, table=parsed.table.schema.empty_table(), lines=_NO_LINES,
                    rejects=[], reject_keys={}, reject_qualifiers={},
                )  # fmt: skip
            rejects += parsed.rejects
            outside += batch.outside
            keys.update(parsed.reject_keys)
            events.update(parsed.reject_qualifiers)
            staged = batch.staged
            if writer is None:
                writer = pq.ParquetWriter(
                    part.path, staged.schema, **parts.writer_options(staged.schema, dtype.key, staged)
                )
            elif staged.schema != writer.schema:
                staged = staged.cast(writer.schema)
            writer.write_table(staged, row_group_size=parts.ROW_GROUP_ROWS)
            part.rows += staged.num_rows
            kept.append(batch.kept)
            lines.append(batch.lines)
            seen = batch.seen
            del staged, parsed, batch
            if on_progress is not None:
                on_progress(seen, part.rows)
    finally:
        if writer is not None:
            writer.close()
    assert shared is not None  # a parse yields at least one batch
    if kept:
        table = _one_chunk(kept)
        del kept
    else:
        table = shared.table.select([c for c in shared.table.column_names if c in wanted])
    every_line = pa.chunked_array(lines, pa.int64()).combine_chunks() if lines else _NO_LINES
    return replace(
        shared, table=table, lines=every_line, rejects=rejects + outside, reject_keys=keys,
        reject_qualifiers=events,
    )  # fmt: skip


@dataclass
class _Ready(batches.Batch):
    """A parsed batch made ready on the parser's thread (`_write`)."""

    staged: pa.Table
    kept: pa.Table
    lines: pa.Array


def _one_chunk(tables: list[pa.Table]) -> pa.Table:
    """The batches' columns each as one array: validation then reads them without a copy per
    expectation (`columnar._column`). Emptied as it goes, so each batch's copy of a column
    is freed once that column is joined. The columns are joined on the parse's threads
    (Arrow's concatenation releases the GIL): on one, the other core sat idle for ~0.1 s of a
    1M-row ingest's ~0.2 s of joining (issue 13)."""
    schema = tables[0].schema
    by_column: list[list[pa.Array] | None] = [
        [chunk for t in tables for chunk in t.column(i).chunks] for i in range(len(schema))
    ]
    tables.clear()

    def join(i: int) -> pa.Array:
        parts = by_column[i]
        assert parts is not None
        by_column[i] = None
        return _compact_array(pa.chunked_array(parts, schema.field(i).type))

    threads = min(parse_threads(), len(schema))
    if threads < 2:
        return pa.Table.from_arrays([join(i) for i in range(len(schema))], schema=schema)
    with ThreadPoolExecutor(threads, thread_name_prefix="join") as pool:
        return pa.Table.from_arrays(list(pool.map(join, range(len(schema)))), schema=schema)


def _compact(table: pa.Table) -> pa.Table:
    """`table` in fresh buffers of exactly its size."""
    return pa.Table.from_arrays([_compact_array(c) for c in table.columns], schema=table.schema)


def _compact_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One array of `values` in fresh buffers (concatenating copies, even a single chunk)."""
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    return pa.concat_arrays([*chunks, pa.array([], values.type)]) if chunks else pa.array([], values.type)


def _give_back() -> None:
    """Return the memory Arrow's allocator keeps for reuse to the system: what the batches
    and validation's transients freed would otherwise still count at the load's peak, which
    DuckDB's own memory (not Arrow's pool) then adds to."""
    pa.default_memory_pool().release_unused()


def read_back(dtype: schemas.DataType) -> set[str]:
    """The columns validation (the suite, the "already loaded" key, the late events), the
    load (late locks) and the results file (keys) read of a streamed batch."""
    suite = load_suite(dtype.key)
    wanted = {c for e in suite["expectations"] for c in expectation_columns(e["kwargs"])}
    wanted.update(dtype.key_columns)
    if dtype.action_columns is not None:
        wanted.update(dtype.action_columns)
    return wanted


def recheck(
    settings: Settings, connection: Connection, computed: Computed, already: list[str], now: dt.datetime
) -> Computed:
    """`compute.recheck_loaded` for any batch (its records loaded meanwhile: judged again). A
    streamed one first reads back the columns its validation read: after it, `compute` kept
    only the keys, event dates and warned columns, and the cut table judged again failed
    every expectation on a column it no longer had (13 false critical failures in the report
    the reviewer and the partner read, where the whole parse names only the loaded records)."""
    if already and computed.part is not None and computed.parsed is not None:
        wanted = read_back(schemas.get(connection.data_type))
        stored = pq.read_schema(computed.part.path).names
        table = pq.read_table(computed.part.path, columns=[c for c in stored if c in wanted])
        computed = replace(computed, parsed=replace(computed.parsed, table=table))
    return recheck_loaded(settings, connection, computed, already, now)


def whole(parsed: ParseResult, part: Streamed) -> ParseResult:
    """The streamed batch with all its columns (a held batch is kept whole for review)."""
    table = pq.read_table(part.path)
    return replace(parsed, table=table.drop_columns(list(_STORED)))
