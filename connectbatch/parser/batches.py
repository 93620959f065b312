"""A file parsed as a stream of bounded batches, for the ingest of big files (issue 13).

`parse_file` holds the whole typed table (~1.4x the file for call conversions), so an ingest
built on it can never stay under 1.5x the file at its peak. `parse_file_batches` gives the
same rows, lines and rejects as `parse_file` a batch of about BATCH_BYTES of input at a time:

- The body is cut at record boundaries: the windows of `blocks._windows` are fed in order to
  one compiled parser; once a batch holds BATCH_BYTES, the next window is cut after its last
  LF with an even number of quotes before it (`cut_window`, the threaded parse's own cut) and
  the parser is fed up to there. The parser itself says whether that was a record boundary
  (no bytes carried over): then it is finished, its rows are a batch, and a fresh parser
  starts on the line it stopped at. A wrong guess (only in a malformed file: a stray quote
  in an unquoted field) costs memory, never a different result: the same parser goes on
  into the next window, exactly as the one-thread parse, and the batch simply grows.
- One producer thread cuts, parses (the core releases the GIL) and assembles the next batch
  while the caller works on the one before (validation, the Parquet writer: pyarrow also
  releases the GIL); at most one finished batch waits, so at most three are alive at once.
- Rejects: a whole parse lists the core's rejects in line order, then the times that leave
  the UTC range; each batch keeps the latter apart (`Batch.outside`) so the caller can put
  them after all the others, as `parse_file` does.

The pure-Python engine has no incremental parser: it yields one batch of the whole file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType

from connectbatch import schemas
from connectbatch.mapping import constants as mapping_constants
from connectbatch.parser import api, blocks, containers, huge_pages, reasons, run_on
from connectbatch.parser import decode as csvdecode
from connectbatch.parser import plan as csvplan
from connectbatch.parser.ahead import produced_ahead
from connectbatch.parser.api import ParseResult, Reject
from connectbatch.parser.options import ParseOptions

__all__ = ["BATCH_BYTES", "Batch", "parse_file_batches"]

# Input bytes per batch: ~80,000 call-conversion rows, ~115 MB typed (issue 13: three alive
# at once stay well under the file's size; bigger batches gain little).
BATCH_BYTES = 32 * 1024 * 1024


@dataclass
class Batch:
    """One batch of a streamed parse: its rows and the core's rejects (`parsed`), the rejects
    of times outside the UTC range apart (`outside`), and the body bytes and rows parsed so
    far, this batch included (for progress)."""

    parsed: ParseResult
    outside: list[Reject]
    seen: int
    rows: int


def parse_file_batches(
    path: str | os.PathLike[str],
    data_type: str | None,
    *,
    options: ParseOptions | None = None,
    mapped: bool = False,
    batch_bytes: int | None = None,
    then: Callable[[Batch], Batch] | None = None,
) -> Iterator[Batch]:
    """The file's rows a batch at a time, each batch's rows in file order with their physical
    lines; together the same table, lines and rejects as `parse_file(path, data_type,
    options=options)`. File-level problems raise ParseError as there (the header at once,
    a size limit when it is reached). Closing the iterator early stops the producer.
    `then` runs on each batch in the producer thread, before it is handed over (the caller's
    own per-batch work that should overlap its work on the batch before); the iterator
    yields what it returns."""
    opts = options or ParseOptions()
    with api._open(path) as raw:
        payload = containers.open_payload(raw, opts.max_bytes)
        if opts.engine != "cython":  # the reference core parses at the end: one batch
            whole = api._parse(payload, data_type, opts, mapped)
            batch = Batch(whole, [], 0, whole.rows_accepted)
            yield then(batch) if then is not None else batch
            return
        yield from _stream(payload, data_type, opts, mapped, batch_bytes or BATCH_BYTES, then)


@dataclass
class _Setup:
    """What every batch of one file shares: the parse plan and how to finish a batch."""

    core: ModuleType
    plan: csvplan.Plan
    dtype: schemas.DataType | None  # None: raw text columns, as parse_file(path, None)
    parse_dtype: schemas.DataType | None
    timezone: str
    constants: dict[str, str]
    encoding: str
    header: list[str]
    preamble: dict[str, str]


def _stream(
    payload: csvdecode.Readable,
    data_type: str | None,
    options: ParseOptions,
    mapped: bool,
    batch_bytes: int,
    then: Callable[[Batch], Batch] | None,
) -> Iterator[Batch]:
    """The header as `api._parse` reads it, then the body's batches from a producer thread."""
    dtype = schemas.get(data_type) if data_type is not None else None
    delim = csvplan.check_delimiter(options.delimiter)
    api.check_timezone(options.timezone)
    core = api._core(options.engine)
    huge_pages.prepare(core, csvdecode.plain_size(payload))
    enc, chunks = csvdecode.utf8_source(payload, options.encoding, reuse=True, mapped=mapped)
    head = api._head(core, chunks, delim, dtype, options, enc.name)
    rest, next_line = head.rest, head.next_line
    setup = _Setup(
        core, head.plan, dtype, head.parse_dtype, head.timezone, head.constants, enc.name, head.header,
        head.preamble,
    )  # fmt: skip

    def produce(stop: threading.Event) -> Iterator[Batch]:
        for batch in _batches(setup, rest, chunks, next_line, batch_bytes, stop):
            yield then(batch) if then is not None else batch

    yield from produced_ahead(produce, 1, "connectbatch-batches")


def _batches(
    setup: _Setup,
    rest: memoryview,
    chunks: Iterator[bytes | memoryview],
    first_line: int,
    batch_bytes: int,
    stop: threading.Event,
) -> Iterator[Batch]:
    """The body's batches, cut at verified record boundaries (see the module docstring)."""
    core, plan = setup.core, setup.plan
    parser = core.Parser(plan, first_line)
    parity, held, seen, rows = 0, 0, 0, 0
    # windows no bigger than a batch, so a batch ends near its size even in a small file
    for window, last in blocks._windows(rest, chunks, min(blocks.BLOCK_BYTES, batch_bytes)):
        if stop.is_set():
            return
        seen += len(window)
        if last:
            parser.feed(window, True)
            break
        cut, parity = core.cut_window(window, parity)  # the parity goes on from every window
        if held + len(window) < batch_bytes:
            cut = 0  # not yet time to cut
        if not cut:
            parser.feed(window, False)
            held += len(window)
            continue
        parser.feed(window[:cut], False)
        if parser.pending_bytes:  # not a record boundary: the record, and the batch, go on
            parser.feed(window[cut:], False)
            held += len(window)
            continue
        line = parser.next_line
        batch = _finish(setup, parser, seen - (len(window) - cut), rows)
        rows = batch.rows
        yield batch
        del batch
        parser = core.Parser(plan, line)
        if cut < len(window):
            parser.feed(window[cut:], False)
        held = len(window) - cut
    yield _finish(setup, parser, seen, rows)


def _finish(setup: _Setup, parser: object, seen: int, rows_before: int) -> Batch:
    """A parser's rows as a batch: the table `api._parse` would assemble for them."""
    finish: Callable[[], csvplan.CoreOutput] = parser.finish  # type: ignore[attr-defined]
    out = finish()
    plan = setup.plan
    outside = csvplan.drop_outside_utc_range(out, setup.timezone) if setup.parse_dtype is not None else []
    table = csvplan.assemble(plan, out, setup.parse_dtype, setup.timezone)
    if setup.dtype is not None and setup.constants:
        table = mapping_constants.fill(table, setup.dtype, setup.constants, setup.timezone)
    if setup.dtype is not None:
        table = api.with_absent(table, plan, setup.dtype, setup.constants)
    rejects = [reasons.reject(plan, raw, setup.encoding) for raw in out.rejects]
    late = [
        Reject(
            line, plan.slots[slot].name, wall,
            f"{wall} in {setup.timezone} is before year 1 or after 9999 in UTC",
        )
        for line, slot, wall in outside
    ]  # fmt: skip
    keys, qualifiers = api.split_reject_keys(out)
    table, lines = run_on.refuse(plan, table, out.lines, rejects, keys, qualifiers, out.broken)
    parsed = ParseResult(
        table, rejects, list(plan.unknown_columns), lines, setup.encoding, setup.header, keys,
        setup.preamble, qualifiers,
    )  # fmt: skip
    return Batch(parsed, late, seen, rows_before + table.num_rows)
