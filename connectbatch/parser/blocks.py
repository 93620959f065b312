"""Parsing one file on several cores, with the result of a one-thread parse.

Why it works this way:
- The compiled core releases the GIL while it parses, so threads run in parallel; the
  question is only where to cut the bytes. A record boundary is an LF outside quotes, and
  that depends on everything before it. The body is sliced into windows of about
  BLOCK_BYTES (zero-copy views of the chunks), and each window's job cuts its own window:
  `_csvcore.cut_window` finds the last LF after an even number of quotes, counting the
  quotes before the window, which the job before hands on (`_Chain`) as soon as it has
  scanned its window, before it parses. Block k is the tail of window k-1 after its cut
  plus window k up to its cut, fed to one parser in those pieces (a parser carries a record
  over a piece border as over a read chunk), so nothing is joined by copying.
- The guess is then *verified*: a block's parser must end exactly at its cut with nothing
  carried over. The first block starts on a true boundary (the end of the header), so by
  induction every verified block is parsed exactly as a one-thread parse would parse it.
  A wrong guess (possible only in a malformed file: a stray quote inside an unquoted field)
  costs time, never a different result: from the first block that did not end on its cut,
  one fresh parser reads the rest of the file in order, as the one-thread parse does. A
  window with no cut (a quoted field longer than a window) is carried into the next one;
  after MAX_WIDEN blocks' worth with no cut (CR-only line ends) the rest is read that way.
- The calling thread only queues jobs and puts the results together: the jobs also take
  their windows from the chunk iterator themselves, one after the other along the chain,
  so reading (or mapping in and releasing) chunks, the quote scan and the first touch of
  the pages all run on the workers. Measured on the 1M-row, 393 MB bench file: the calling
  thread's CPU went from ~130 ms (cutting, page faults, joins) to ~40 ms (renumbering,
  assembly, the rejects' messages), of ~0.93 s in all (one thread: ~0.85 s).
- Jobs wait in one queue for the threads, and a thread takes the next one as soon as it is
  free, on whichever parser is free (`_Crew`): handing them out in strict turn left one
  thread idle while the other was still on an earlier, slower block. Any parser may take
  any block: each parser counts lines from 0 in every block and keeps its rejects per
  block, so lines and rejects are renumbered once the blocks before are known, and the
  rows of a block are found by the parser and row range it reports. The typed columns are
  zero-copy slices of the parsers' buffers, put together in file order as chunked columns:
  no concatenation copy, so peak memory stays that of the one-thread parse plus the blocks
  in flight (two per thread).
- A body of one window is read on one parser, streaming as before.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pyarrow as pa

from connectbatch.errors import ParseError
from connectbatch.parser.options import Progress
from connectbatch.parser.plan import CoreOutput, Plan

BLOCK_BYTES = 4 * 1024 * 1024
# A cut is looked for in up to this many blocks' worth of bytes before giving up on threads.
MAX_WIDEN = 4
IN_FLIGHT = 2  # blocks a thread has queued or in hand
MAX_TEXT = 2147483647  # Arrow string offsets are int32: the one-thread core's limit per column

Piece = bytes | memoryview
RawReject = tuple[int, int, int, bytes, int]
RejectKey = tuple[bytes | None, bytes | None]  # CoreOutput.reject_keys' values


@dataclass
class _Done:
    """What one parser did with one block (lines and rejects counted from 0)."""

    first_row: int
    end_row: int
    lines: int
    pending: int
    rejects: list[RawReject]
    keys: dict[int, RejectKey]
    broken: list[tuple[int, int]]


@dataclass
class _Segment:
    """Rows [first_row, end_row) of one parser's output, starting on absolute line `base`."""

    parser: int
    first_row: int
    end_row: int | None  # None: to the end of that parser's rows
    base: int
    rejects: list[RawReject] = field(default_factory=list)
    keys: dict[int, RejectKey] = field(default_factory=dict)
    broken: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class _Link:
    """What the job of one window hands to the job of the next: the quote parity at the
    end of its window, and the bytes after its cut that no block holds yet."""

    parity: int
    carry: list[Piece]
    stop: bool = False  # no block may start any more: the jobs after it do nothing


class _Chain:
    """One link, set once by a window's job and awaited by the next window's job."""

    def __init__(self, link: _Link | None = None) -> None:
        self._set = threading.Event()
        self.link = link
        if link is not None:
            self._set.set()

    def put(self, link: _Link) -> None:
        self.link = link
        self._set.set()

    def get(self) -> _Link:
        self._set.wait()
        assert self.link is not None
        return self.link


Window = tuple[memoryview, bool]  # a window of the body and whether it is the last


@dataclass
class _Result:
    """A window's job: the window it took (None past the end or once halted), the parse of
    its block (None when the window held no cut, or the job was void), the carried bytes
    its block started with (for the fallback), or the error taking the window raised."""

    window: Window | None  # None: past the end, halted, or taking it raised `error`
    carry: list[Piece]
    parsed: tuple[int, _Done] | None = None
    size: int = 0  # bytes in the block
    gave_up: bool = False  # no cut in MAX_WIDEN blocks' worth of bytes
    error: BaseException | None = None


def _windows(first: Piece, chunks: Iterator[Piece], size: int) -> Iterator[tuple[memoryview, bool]]:
    """The body as zero-copy windows of about `size` bytes, each with whether it is the
    last. Windows never span chunks (a block that does is fed to its parser in pieces)."""
    pending: memoryview | None = None
    for chunk in itertools.chain([first], chunks):
        if not len(chunk):
            continue
        view = memoryview(chunk)
        n = max(1, round(len(view) / size))
        step = -(-len(view) // n)
        for lo in range(0, len(view), step):
            if pending is not None:
                yield pending, False
            pending = view[lo : lo + step]
    if pending is not None:
        yield pending, True


def _run_block(parser: Any, block: list[Piece], final: bool) -> _Done:
    """One block, fed in its pieces, on one parser (its own thread; the core parses
    without the GIL). Pieces join like read chunks: the parser carries a record over."""
    parser.begin_block(0)
    first_row = parser.rows
    for piece in block[:-1]:
        parser.feed(piece, False)
    parser.feed(block[-1], final)
    rejects, keys, broken = parser.take_rejects()
    return _Done(first_row, parser.rows, parser.next_line, parser.pending_bytes, rejects, keys, broken)


class _Crew:
    """The parsers of one threaded parse, lent to whichever thread takes the next block.

    At most `threads` blocks run at once, each on a parser it holds, so at most `threads`
    parsers are made (as jobs first need them). A parser left with an incomplete record
    (its block did not end on a record boundary: a wrong cut) is not lent again: the next
    block it would take may come *before* the wrong one in the file (threads pick their
    parser in the order they get to it, not in file order) and must be parsed as a fresh
    parser would; a new parser takes its place. Its rows up to that block stay valid."""

    def __init__(
        self, core: ModuleType, plan: Plan, limit: int = MAX_WIDEN * BLOCK_BYTES, expect: int = 0
    ) -> None:
        self.core = core
        self.plan = plan
        self.limit = limit
        self.expect = expect  # bytes each parser can expect to get (0: unknown)
        self.parsers: list[Any] = []
        self._free: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.halt = False  # a wrong cut was found: the jobs still queued are void

    def add(self) -> int:
        """A new parser (counting lines from 0); its index in `parsers`."""
        parser = (
            self.core.Parser(self.plan, 0, self.expect) if self.expect else self.core.Parser(self.plan, 0)
        )
        with self._lock:
            self.parsers.append(parser)
            return len(self.parsers) - 1

    def run(self, block: Piece | list[Piece], final: bool) -> tuple[int, _Done]:
        """Parse `block` (bytes, or pieces in order) on a free parser (a new one when none
        is): (its index, what it did)."""
        pieces = block if isinstance(block, list) else [block]
        try:
            j = self._free.get_nowait()
        except queue.Empty:
            j = self.add()
        clean = False
        try:
            done = _run_block(self.parsers[j], pieces, final)
            clean = not done.pending
        finally:
            self._free.put(j if clean else self.add())
        return j, done

    def job(self, windows: Iterator[Window], before: _Chain, after: _Chain) -> _Result:
        """Take the next window, cut it and hand the rest on, then parse the block that ends
        at the cut: the bytes carried from the windows before plus the window's head.

        All on this worker, in file order by the chain (a job takes its window only once the
        job before has handed on): reading or mapping in the next chunk, releasing old
        mapped pages, the quote scan and the first touch of the window's pages were the
        serial part of a threaded parse while the calling thread did them."""
        link = before.get()
        if link.stop or self.halt:
            after.put(_Link(0, [], True))
            return _Result(None, link.carry)
        try:
            item = next(windows, None)
        except BaseException as exc:  # raised in file order by the calling thread
            after.put(_Link(0, [], True))
            return _Result(None, link.carry, error=exc)
        if item is None:
            after.put(_Link(0, [], True))
            return _Result(None, link.carry)
        window, final = item
        try:
            if final:
                block = [*link.carry, window]
                after.put(_Link(0, [], True))
            else:
                cut, parity = self.core.cut_window(window, link.parity)
                if not cut:
                    carry = [*link.carry, window]
                    held = sum(len(p) for p in carry)
                    after.put(_Link(parity, carry, held > self.limit))
                    return _Result(item, link.carry, gave_up=held > self.limit)
                block = [*link.carry, window[:cut]]
                after.put(_Link(parity, [window[cut:]] if cut < len(window) else []))
        except BaseException:
            after.put(_Link(0, [], True))
            raise
        try:
            parsed = self.run(block, final)
        except BaseException as exc:  # raised in file order (void past a wrong cut)
            return _Result(item, link.carry, error=exc)
        return _Result(item, link.carry, parsed, sum(len(p) for p in block))


def _replay(taken: list[Piece], error: BaseException | None, windows: Iterator[Window]) -> Iterator[Piece]:
    """The windows jobs had taken, then (in that order) the error taking one raised, then
    the windows no job took."""
    yield from taken
    if error is not None:
        raise error
    for window, _final in windows:
        yield window


def parse_threaded(
    core: ModuleType,
    plan: Plan,
    first_line: int,
    first: Piece,
    chunks: Iterator[Piece],
    threads: int,
    progress: Progress | None,
    block_bytes: int | None = None,
    expect_bytes: int = 0,
) -> tuple[CoreOutput, int, int]:
    """Parse the body (`first`, then `chunks`) on `threads` parsers; (output, bytes seen,
    rows). The output equals that of one parser fed the same bytes.

    This thread only slices the body into windows and queues them; each window's job cuts
    it (chained to the job before by the quote parity alone) and parses its block, so the
    scans and page faults run on the workers, in parallel with the parsing. `expect_bytes`
    (the body's size, when known) lets each parser size its buffers for its share."""
    size = block_bytes or BLOCK_BYTES
    windows = _windows(first, chunks, size)
    share = expect_bytes // threads + expect_bytes // (8 * threads)  # blocks split about evenly
    crew = _Crew(core, plan, MAX_WIDEN * size, share)
    parsers = crew.parsers
    pool: ThreadPoolExecutor | None = None
    segments: list[_Segment] = []
    inflight: deque[Future[_Result]] = deque()
    line, rows, seen = first_line, 0, 0
    fallback: list[Piece] | None = None  # pieces one fresh parser must read in order
    rest: Iterator[Piece] = iter(())
    try:
        first_window = next(windows, None)
        if first_window is None:
            fallback = []
        elif first_window[1]:  # the whole body is one window: no threads needed
            fallback = [first_window[0]]
        else:
            # The jobs take the windows from here, in turn (see `_Crew.job`).
            taking: Iterator[Window] = itertools.chain([first_window], windows)
            pool = ThreadPoolExecutor(threads, thread_name_prefix="connectbatch-parse")
            chain = _Chain(_Link(0, []))
            ended = False
            while True:
                while not ended and len(inflight) < IN_FLIGHT * threads:
                    after = _Chain()
                    inflight.append(pool.submit(crew.job, taking, chain, after))
                    chain = after
                if not inflight:
                    break
                res = inflight.popleft().result()
                if res.error is not None:
                    raise res.error
                if res.window is None:  # past the end (only after the last window's job)
                    continue
                window, final = res.window
                ended = ended or final
                if res.parsed is None and not res.gave_up:
                    continue  # no cut in this window: its bytes are carried to the next
                if res.gave_up or (res.parsed is not None and res.parsed[1].pending and not final):
                    # No cut in MAX_WIDEN blocks' worth, or the cut was not a record
                    # boundary: from this block's start on, one parser in order. The jobs
                    # still queued take no window now; those that did hand theirs back.
                    crew.halt = True
                    fallback = [*res.carry, window]
                    taken: list[Piece] = []
                    error: BaseException | None = None
                    for fut in inflight:
                        later = fut.result()
                        if later.window is not None:
                            taken.append(later.window[0])
                        elif error is None:  # taking the window failed: raised in turn
                            error = later.error
                    inflight.clear()
                    rest = _replay(taken, error, taking)
                    break
                assert res.parsed is not None
                j, done = res.parsed
                segments.append(
                    _Segment(j, done.first_row, done.end_row, line, done.rejects, done.keys, done.broken)
                )
                line += done.lines
                rows += done.end_row - done.first_row
                seen += res.size
                if progress is not None:
                    progress(seen, rows)
                if final:
                    break
            for fut in inflight:  # jobs past the end: nothing to take
                fut.exception()
            inflight.clear()
        if fallback is not None:
            seq = core.Parser(plan, line)
            parsers.append(seq)  # no job runs any more (all drained above)
            for piece in itertools.chain(fallback, rest):  # streaming: not a list
                seq.feed(piece, False)
                seen += len(piece)
                if progress is not None:
                    progress(seen, rows + seq.rows)
            seq.feed(b"", True)
            rejects, keys, broken = seq.take_rejects()
            segments.append(_Segment(len(parsers) - 1, 0, None, 0, rejects, keys, broken))
            rows += seq.rows
        outs = [p.finish() for p in parsers]
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return _combine(core, outs, segments), seen, rows


def _combine(core: ModuleType, outs: list[CoreOutput], segments: list[_Segment]) -> CoreOutput:
    """The parsers' outputs as one, in file order: zero-copy slices, renumbered lines."""
    pieces: list[tuple[CoreOutput, int, int, int]] = []  # output, first row, rows, line offset
    for s in segments:
        out = outs[s.parser]
        end = len(out.lines) if s.end_row is None else s.end_row
        if end > s.first_row:
            pieces.append((out, s.first_row, end - s.first_row, s.base))
    nslots = len(outs[0].arrays)
    naive_slots = sorted(outs[0].naive)
    for i in range(nslots):
        typ = outs[0].arrays[i].type
        if pa.types.is_string(typ) or pa.types.is_binary(typ):
            # The pieces are rows of the parsers' columns: when the parsers' whole columns
            # add up to no more than the limit, so do the pieces, and the sum over every
            # piece (thousands of Python calls, on the one thread) is not needed.
            text = sum(_text_bytes(out.arrays[i], 0, len(out.arrays[i])) for out in outs)
            if text > MAX_TEXT:
                text = sum(_text_bytes(out.arrays[i], a, n) for out, a, n, _ in pieces)
            if text > MAX_TEXT:
                raise ParseError("a column holds more than 2 GiB of text; split the file")
    # Each parser's columns (and naive flags) as one record batch, so that a piece is one
    # slice of all of them: one call a block instead of one a column and block (~4,800 calls
    # for the 1M-row bench file, on the one thread after the parse). The columns come out
    # as the same zero-copy slices, chunked in file order.
    names = [str(k) for k in range(nslots + len(naive_slots))]
    as_batch = {
        id(out): pa.RecordBatch.from_arrays([*out.arrays, *(out.naive[i] for i in naive_slots)], names=names)
        for out in outs
    }
    schema = as_batch[id(outs[0])].schema
    table = pa.Table.from_batches([as_batch[id(out)].slice(a, n) for out, a, n, _ in pieces], schema=schema)
    arrays: list[Any] = [table.column(i) for i in range(nslots)]
    naive = {i: table.column(nslots + k) for k, i in enumerate(naive_slots)}
    if pieces:
        lines = core.joined_lines([(out.lines, a, n, base) for out, a, n, base in pieces])
    else:  # not pa.array([]): converting Python values imports pandas on first use
        lines = pa.Array.from_buffers(pa.int64(), 0, [None, pa.py_buffer(b"")])
    rejects: list[RawReject] = []
    keys: dict[int, RejectKey] = {}
    broken: list[tuple[int, int]] = []
    for s in segments:
        rejects += [(ln + s.base, f, c, v, e) for ln, f, c, v, e in s.rejects]
        keys.update({ln + s.base: v for ln, v in s.keys.items()})
        broken += [(ln + s.base, f) for ln, f in s.broken]
    return CoreOutput(arrays, lines, rejects, naive, keys, broken)


def _text_bytes(arr: Any, first: int, n: int) -> int:
    """Bytes of text in rows [first, first + n), read from the int32 offsets buffer."""
    offsets = memoryview(arr.buffers()[1]).cast("i")
    start = arr.offset + first
    return int(offsets[start + n]) - int(offsets[start])
