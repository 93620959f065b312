"""Parsing one file on several cores, with the result of a one-thread parse.

Why it works this way:
- The compiled core releases the GIL while it parses, so threads run in parallel; the
  question is only where to cut the bytes. A record boundary is an LF outside quotes, and
  that depends on everything before it. `_csvcore.cut_block` guesses it cheaply (the last LF
  after an even number of quotes, counted eight bytes at a time) and the guess is then
  *verified*: a block's parser must end exactly at the next cut with nothing carried over.
  The first block starts on a true boundary (the end of the header), so by induction every
  verified block is parsed exactly as a one-thread parse would parse it.
- A wrong guess (possible only in a malformed file: a stray quote inside an unquoted field)
  costs time, never a different result: from the first block that did not end on its cut,
  one fresh parser reads the rest of the file in order, as the one-thread parse does.
- Blocks wait in one queue for the threads, and a thread takes the next block as soon as it
  is free, on whichever parser is free (`_Crew`): handing them out in strict turn left one
  thread idle while the other was still on an earlier, slower block. Any parser may take
  any block: each parser counts lines from 0 in every block and keeps its rejects per
  block, so lines and rejects are renumbered once the blocks before are known, and the
  rows of a block are found by the parser and row range it reports. The typed columns are
  zero-copy slices of the parsers' buffers, put together in file order as chunked columns:
  no concatenation copy, so peak memory stays that of the one-thread parse plus the blocks
  in flight (two per thread).
- Blocks are zero-copy slices of the read chunks (decode's reused read buffers); only the
  few lines joining two chunks are copied, and that short block is parsed on the calling
  thread by a parser of its own rather than queued as a job that would wait for the GIL.
- A file of one block, or bytes with no cut to be found (no LF: CR-only line ends; an odd
  number of quotes from early on), is read on one parser, streaming as before.
- Measured on the shared 2-core machine (300k-row, 118 MB bench file): the threaded parse
  costs ~10 % more CPU than one thread (the extra scan for quotes, fresh read buffers), and
  the work outside the blocks (header, renumbering, assembly) is ~10 ms.
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
INLINE_BYTES = 64 * 1024  # a block this short is parsed on the calling thread
IN_FLIGHT = 2  # blocks a thread has queued or in hand
MAX_TEXT = 2147483647  # Arrow string offsets are int32: the one-thread core's limit per column

Piece = bytes | memoryview
RawReject = tuple[int, int, int, bytes, int]


@dataclass
class _Done:
    """What one parser did with one block (lines and rejects counted from 0)."""

    first_row: int
    end_row: int
    lines: int
    pending: int
    rejects: list[RawReject]
    keys: dict[int, bytes]


@dataclass
class _Segment:
    """Rows [first_row, end_row) of one parser's output, starting on absolute line `base`."""

    parser: int
    first_row: int
    end_row: int | None  # None: to the end of that parser's rows
    base: int
    rejects: list[RawReject] = field(default_factory=list)
    keys: dict[int, bytes] = field(default_factory=dict)


class _Source:
    """The UTF-8 chunks as blocks that (probably) end on a record boundary.

    Blocks are zero-copy slices of the chunks. Only the short tail of a chunk after its
    last cut is copied, joined to the head of the next chunk up to that chunk's first cut;
    a whole chunk is copied only when no cut turns up in it."""

    def __init__(self, core: ModuleType, first: Piece, chunks: Iterator[Piece]) -> None:
        self.core = core
        self.cur = memoryview(first)
        self.pos = 0  # a cut: an even number of quotes before it
        self.chunks = chunks
        self.nxt: memoryview | None = None
        self.done = False

    def _peek(self) -> memoryview | None:
        while self.nxt is None and not self.done:
            chunk = next(self.chunks, None)
            if chunk is None:
                self.done = True
            elif len(chunk):
                self.nxt = memoryview(chunk)
        return self.nxt

    def exhausted(self) -> bool:
        return self.pos == len(self.cur) and self._peek() is None

    def block(self, size: int) -> memoryview | None:
        """The next block; None when no cut turned up in MAX_WIDEN blocks' worth of bytes
        (the caller then reads the rest on one parser). Empty at the end of the file."""
        limit = size
        while True:
            rest = self.cur[self.pos :]
            nxt = self._peek() if len(rest) <= limit else None
            if len(rest) <= limit and nxt is None:  # the rest of the file, or nothing
                self.pos = len(self.cur)
                return rest
            if nxt is not None:  # the chunk's rest is short
                cut = int(self.core.cut_block(rest)) if len(rest) else 0
                if cut:
                    self.pos += cut
                    return rest[:cut]
                self.nxt = None
                head = int(self.core.cut_first(nxt, self.core.quote_parity(rest)))
                if head:  # the tail of this chunk and the head of the next, copied
                    self.cur, self.pos = nxt, head
                    return memoryview(b"".join([rest, nxt[:head]]))
                self.cur, self.pos = memoryview(b"".join([rest, nxt])), 0  # no cut in nxt
                if len(self.cur) > MAX_WIDEN * size:
                    return None
                continue
            window = rest[:limit]
            cut = int(self.core.cut_block(window))
            if cut:
                self.pos += cut
                return window[:cut]
            if limit >= MAX_WIDEN * size:
                return None
            limit *= 2

    def rest(self) -> Iterator[Piece]:
        """Everything not yet handed out as a block, in order (for one parser)."""
        rest = self.cur[self.pos :]
        self.pos = len(self.cur)
        if len(rest):
            yield rest
        if self.nxt is not None:
            nxt, self.nxt = self.nxt, None
            yield nxt
        yield from self.chunks
        self.done = True


def _run_block(parser: Any, block: Piece, final: bool) -> _Done:
    """One block on one parser (its own thread; the core parses without the GIL)."""
    parser.begin_block(0)
    first_row = parser.rows
    parser.feed(block, final)
    rejects, keys = parser.take_rejects()
    return _Done(first_row, parser.rows, parser.next_line, parser.pending_bytes, rejects, keys)


class _Crew:
    """The parsers of one threaded parse, lent to whichever thread takes the next block.

    At most `threads` blocks run at once, each on a parser it holds, so at most `threads`
    parsers are made (as jobs first need them). A parser left with an incomplete record
    (its block did not end on a record boundary: a wrong cut) is not lent again: the next
    block it would take may come *before* the wrong one in the file (threads pick their
    parser in the order they get to it, not in file order) and must be parsed as a fresh
    parser would; a new parser takes its place. Its rows up to that block stay valid."""

    def __init__(self, core: ModuleType, plan: Plan) -> None:
        self.core = core
        self.plan = plan
        self.parsers: list[Any] = []
        self._free: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._lock = threading.Lock()

    def add(self) -> int:
        """A new parser (counting lines from 0); its index in `parsers`."""
        parser = self.core.Parser(self.plan, 0)
        with self._lock:
            self.parsers.append(parser)
            return len(self.parsers) - 1

    def run(self, block: Piece, final: bool) -> tuple[int, _Done]:
        """Parse `block` on a free parser (a new one when none is): (its index, what it did)."""
        try:
            j = self._free.get_nowait()
        except queue.Empty:
            j = self.add()
        clean = False
        try:
            done = _run_block(self.parsers[j], block, final)
            clean = not done.pending
        finally:
            self._free.put(j if clean else self.add())
        return j, done


def parse_threaded(
    core: ModuleType,
    plan: Plan,
    first_line: int,
    first: Piece,
    chunks: Iterator[Piece],
    threads: int,
    progress: Progress | None,
    block_bytes: int | None = None,
) -> tuple[CoreOutput, int, int]:
    """Parse the body (`first`, then `chunks`) on `threads` parsers; (output, bytes seen,
    rows). The output equals that of one parser fed the same bytes."""
    size = block_bytes or BLOCK_BYTES
    src = _Source(core, first, chunks)
    crew = _Crew(core, plan)
    parsers = crew.parsers
    pool: ThreadPoolExecutor | None = None
    segments: list[_Segment] = []
    inflight: deque[tuple[Piece, bool, Future[tuple[int, _Done]]]] = deque()
    line, rows, seen, blocks = first_line, 0, 0, 0
    inline: int | None = None  # the parser of short blocks, on this thread
    fallback: list[Piece] | None = None  # pieces one fresh parser must read in order
    try:
        while fallback is None:
            while len(inflight) < IN_FLIGHT * threads:
                block = src.block(size)
                if block is None:
                    break
                final = src.exhausted()
                if blocks == 0 and final:  # the whole body is one block: no threads needed
                    fallback = [block]
                    break
                if len(block) < INLINE_BYTES:
                    # The few lines joining two chunks: parsed right here on a parser of
                    # their own, as a job they would mostly wait for the GIL.
                    if inline is None:
                        inline = crew.add()
                    fut: Future[tuple[int, _Done]] = Future()
                    try:
                        fut.set_result((inline, _run_block(parsers[inline], block, final)))
                    except Exception as exc:  # raised when (if) its turn comes
                        fut.set_exception(exc)
                else:
                    if pool is None:
                        pool = ThreadPoolExecutor(threads, thread_name_prefix="connectbatch-parse")
                    fut = pool.submit(crew.run, block, final)
                inflight.append((block, final, fut))
                blocks += 1
                if final:
                    break
            if fallback is not None:
                break
            if not inflight:  # no cut found, or the end: the rest (if any) on one parser
                fallback = []
                break
            parsed, final, fut = inflight.popleft()
            j, done = fut.result()
            if done.pending and not final:  # the cut was not a record boundary
                fallback = [parsed] + [b for b, _f, _fut in inflight]
                break
            segments.append(_Segment(j, done.first_row, done.end_row, line, done.rejects, done.keys))
            line += done.lines
            rows += done.end_row - done.first_row
            seen += len(parsed)
            if progress is not None:
                progress(seen, rows)
            if final:
                break
        for _b, _f, fut in inflight:  # speculative blocks past a wrong cut: their work is void
            fut.exception()
        inflight.clear()
        if fallback is not None:
            seq = core.Parser(plan, line)
            parsers.append(seq)  # no job runs any more (all drained above)
            for piece in itertools.chain(fallback, src.rest()):  # streaming: not a list
                seq.feed(piece, False)
                seen += len(piece)
                if progress is not None:
                    progress(seen, rows + seq.rows)
            seq.feed(b"", True)
            rejects, keys = seq.take_rejects()
            segments.append(_Segment(len(parsers) - 1, 0, None, 0, rejects, keys))
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
    arrays: list[Any] = []
    for i in range(nslots):
        parts = [out.arrays[i].slice(a, n) for out, a, n, _ in pieces]
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
        arrays.append(pa.chunked_array(parts, type=typ))
    naive = {
        i: pa.chunked_array([out.naive[i].slice(a, n) for out, a, n, _ in pieces], type=bits.type)
        for i, bits in outs[0].naive.items()
    }
    lines_parts = [
        out.lines.slice(a, n) if base == 0 else core.shifted_lines(out.lines.slice(a, n), base)
        for out, a, n, base in pieces
    ]
    if lines_parts:
        lines = pa.concat_arrays(lines_parts)
    else:  # not pa.array([]): converting Python values imports pandas on first use
        lines = pa.Array.from_buffers(pa.int64(), 0, [None, pa.py_buffer(b"")])
    rejects: list[RawReject] = []
    keys: dict[int, bytes] = {}
    for s in segments:
        rejects += [(ln + s.base, f, c, v, e) for ln, f, c, v, e in s.rejects]
        keys.update({ln + s.base: v for ln, v in s.keys.items()})
    return CoreOutput(arrays, lines, rejects, naive, keys)


def _text_bytes(arr: Any, first: int, n: int) -> int:
    """Bytes of text in rows [first, first + n), read from the int32 offsets buffer."""
    offsets = memoryview(arr.buffers()[1]).cast("i")
    start = arr.offset + first
    return int(offsets[start + n]) - int(offsets[start])
