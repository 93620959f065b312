"""The public parser API: bytes or a file in, a typed Arrow table and row rejects out.

    result = parse_file("calls.csv.gz", "call_conversions")
    result.table      # accepted records, every schema column in schema order
    result.rejects    # Reject(line, column, value, reason), physical line numbers
    result.unknown_columns

The work is split so the fast part can be checked against a simple one: csvdecode turns
the payload into UTF-8 chunks, a *core* tokenizes and types records (`_csvcore`, Cython,
by default; `_refcore`, pure Python, with engine="python"), and csvplan maps the header
and assembles the table. Problems with the file as a whole raise ParseError.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import os
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType

import pyarrow as pa

from connectbatch import schemas, settings
from connectbatch.errors import ConfigurationError, ConnectBatchError, ParseError
from connectbatch.mapping import constants as mapping_constants
from connectbatch.mapping.preamble import SEP_KEY, parse_preamble
from connectbatch.parser import blocks, containers, header_hints, huge_pages, reasons, run_on
from connectbatch.parser import decode as csvdecode
from connectbatch.parser import plan as csvplan
from connectbatch.parser import refcore as _refcore
from connectbatch.parser.options import Engine, ParseOptions, Progress
from connectbatch.parser.plan import CoreOutput
from connectbatch.parser.rejects import Reject, RejectKeys

__all__ = [
    "Engine", "ParseOptions", "ParseResult", "Progress", "Reject", "RejectKeys", "check_timezone",
    "parse_bytes", "parse_file",
]  # fmt: skip

MAX_HEADER_BYTES = 1024 * 1024


@dataclass
class ParseResult:
    table: pa.Table
    rejects: list[Reject]
    unknown_columns: list[str]
    lines: pa.Array = field(repr=False)  # physical start line of each accepted row
    encoding: str = "utf-8"
    header: list[str] = field(default_factory=list)
    # physical line -> the data type's key value (e.g. CallSessionId) of a record rejected for
    # another field, so a results file can name the record as the sender knows it
    reject_keys: dict[int, str] = field(default_factory=dict)
    # settings a preamble line above the header gave (Google Ads `Parameters:TimeZone=...`)
    preamble: dict[str, str] = field(default_factory=dict)
    # physical line -> the key's qualifier (VendorEventId: which event of the call) of such a
    # record, when it was read fine: the results file names the event as well as the call
    reject_qualifiers: dict[int, str] = field(default_factory=dict)

    @property
    def rows_accepted(self) -> int:
        return int(self.table.num_rows)

    @property
    def read_of_rejects(self) -> RejectKeys:
        """What the parser read of the rows it refused: their keys and VendorEventIds."""
        return RejectKeys(self.reject_keys, self.reject_qualifiers)

    @property
    def rows_rejected(self) -> int:
        """Records rejected (a record with three bad fields counts once)."""
        return len({r.line for r in self.rejects})

    @property
    def lines_rejected(self) -> int:
        """Physical lines of the rejected records: what the reject-rate rule judges. A quote
        opened by mistake takes every line up to the next quote into one rejected record;
        counted as one, a file that lost half its rows that way would pass the rule."""
        spans: dict[int, int] = {}
        for r in self.rejects:
            spans[r.line] = max(spans.get(r.line, 1), r.spans)
        return sum(spans.values())


_checked_cores: set[str] = set()


def _core(engine: Engine) -> ModuleType:
    if engine == "python":
        return _refcore
    try:
        from connectbatch import _csvcore
    except ImportError as exc:  # pragma: no cover - depends on the build
        raise ConnectBatchError(
            "the compiled parser (connectbatch._csvcore) is not built; run `make build`"
        ) from exc
    if _csvcore.__name__ not in _checked_cores:  # once per process: a stale build is refused
        csvplan.check_core_constants(_csvcore)
        _checked_cores.add(_csvcore.__name__)
    return _csvcore


def parse_bytes(
    data: bytes,
    data_type: str | None = "call_conversions",
    *,
    encoding: str | None = None,
    column_map: dict[str, str] | None = None,
    delimiter: str = ",",
    timezone: str = "UTC",
    max_bytes: int = csvdecode.DEFAULT_MAX_BYTES,
    engine: Engine = "cython",
    progress: Progress | None = None,
    constants: dict[str, str] | None = None,
    options: ParseOptions | None = None,
    threads: int | None = None,
) -> ParseResult:
    """Parse a whole file held in memory (.gz and single-member .zip are unpacked).

    The settings come as keywords or together as `options=ParseOptions(...)`, not both."""
    opts = ParseOptions.merge(
        options, encoding=encoding, column_map=column_map, delimiter=delimiter,
        timezone=timezone, max_bytes=max_bytes, engine=engine, progress=progress,
        constants=constants, threads=threads,
    )  # fmt: skip
    data = bytes(data)
    if containers.is_container(data[: containers.SNIFF_BYTES]):
        payload: csvdecode.Readable | bytes = containers.open_payload(io.BytesIO(data), opts.max_bytes)
    else:
        if len(data) > opts.max_bytes:
            raise ParseError(f"the file is {len(data):,} bytes, over the limit of {opts.max_bytes:,} bytes")
        payload = data
    return _parse(payload, data_type, opts)


def parse_file(
    path: str | os.PathLike[str],
    data_type: str | None = "call_conversions",
    *,
    encoding: str | None = None,
    column_map: dict[str, str] | None = None,
    delimiter: str = ",",
    timezone: str = "UTC",
    max_bytes: int = csvdecode.DEFAULT_MAX_BYTES,
    engine: Engine = "cython",
    progress: Progress | None = None,
    constants: dict[str, str] | None = None,
    options: ParseOptions | None = None,
    threads: int | None = None,
    mapped: bool = False,
) -> ParseResult:
    """Parse a file from disk in chunks, so memory holds the result, not the input.

    The settings come as keywords or together as `options=ParseOptions(...)`, not both.
    `mapped=True` lets a big plain file be scanned from a read-only mapping instead of read
    (less CPU): pass it only for a file that is ours and that nothing shortens or rewrites
    while it is parsed (the ingest's staged copy), since a mapped file shortened by another
    process kills this process with SIGBUS rather than raising. Off by default, so a path a
    user names is always read (`decode._mapped`)."""
    opts = ParseOptions.merge(
        options, encoding=encoding, column_map=column_map, delimiter=delimiter,
        timezone=timezone, max_bytes=max_bytes, engine=engine, progress=progress,
        constants=constants, threads=threads,
    )  # fmt: skip
    with _open(path) as raw:
        payload = containers.open_payload(raw, opts.max_bytes)
        return _parse(payload, data_type, opts, mapped)


def _open(path: str | os.PathLike[str]) -> io.BufferedReader:
    """`path` opened for reading (the caller closes it); one that cannot be opened is a
    ParseError naming it."""
    try:
        return open(path, "rb")
    except OSError as exc:
        raise ParseError(f"cannot open {os.fspath(path)}: {exc.strerror or exc}") from exc


def _parse(
    payload: csvdecode.Readable | bytes, data_type: str | None, options: ParseOptions, mapped: bool = False
) -> ParseResult:
    dtype = schemas.get(data_type) if data_type is not None else None
    delim = csvplan.check_delimiter(options.delimiter)
    check_timezone(options.timezone)
    core = _core(options.engine)
    progress = options.progress
    threads = options.threads if options.threads is not None else settings.parse_threads()
    expect = csvdecode.plain_size(payload) if options.engine == "cython" else 0
    # A body known to fit one block is one window, parsed by one parser either way: without
    # the crew and its windows a 200-row file parses in 0.5 ms instead of 0.7 (issue 13).
    threaded = threads > 1 and options.engine == "cython" and not 0 < expect < blocks.BLOCK_BYTES
    huge_pages.prepare(core, expect)
    enc, chunks = csvdecode.utf8_source(payload, options.encoding, reuse=True, mapped=mapped)
    head = _head(core, chunks, delim, dtype, options, enc.name)
    plan, parse_dtype, timezone, constants = head.plan, head.parse_dtype, head.timezone, head.constants
    header, preamble, rest, next_line = head.header, head.preamble, head.rest, head.next_line
    if threaded:
        out, seen, rows = blocks.parse_threaded(
            core, plan, next_line, rest, chunks, threads, progress, expect_bytes=expect
        )
    else:
        # the compiled core sizes its buffers from the input's size (fewer, larger growths)
        parser = core.Parser(plan, next_line, expect) if expect else core.Parser(plan, next_line)
        if expect >= csvdecode.READ_AHEAD_MIN and not mapped:  # a mapping has no reads to overlap
            chunks = csvdecode.read_ahead(chunks)
        seen = len(rest)
        parser.feed(rest, False)
        for chunk in chunks:
            parser.feed(chunk, False)
            seen += len(chunk)
            if progress is not None:
                progress(seen, parser.rows)
        parser.feed(b"", True)
        out = parser.finish()
        rows = parser.rows
    if progress is not None:
        progress(seen, rows)
    outside = csvplan.drop_outside_utc_range(out, timezone) if parse_dtype is not None else []
    table = csvplan.assemble(plan, out, parse_dtype, timezone)
    if dtype is not None and constants:
        table = mapping_constants.fill(table, dtype, constants, timezone)
    if dtype is not None:
        table = with_absent(table, plan, dtype, constants)
    memo: dict[tuple[int, int, int], tuple[str | None, str]] = {}
    rejects = [reasons.reject(plan, raw, enc.name, memo) for raw in out.rejects]
    keys, qualifiers = split_reject_keys(out)
    table, lines = run_on.refuse(plan, table, out.lines, rejects, keys, qualifiers, out.broken)
    # the times that leave the UTC range last, as the streamed batches put them (`batches`):
    # refuse's line order would mix them in when a record ran on
    rejects += [
        Reject(
            line, plan.slots[slot].name, wall, f"{wall} in {timezone} is before year 1 or after 9999 in UTC"
        )
        for line, slot, wall in outside
    ]
    return ParseResult(
        table, rejects, list(plan.unknown_columns), lines, enc.name, header, keys, preamble, qualifiers
    )


def with_absent(
    table: pa.Table, plan: csvplan.Plan, dtype: schemas.DataType, constants: dict[str, str] | None
) -> pa.Table:
    """`table` marked with the columns the file did not send (schema metadata read by
    store/data.with_stored_columns), by a whole parse and by each streamed batch alike."""
    sent = {slot.name for slot in plan.slots} | set(constants or ())
    absent = ",".join(c for c in dtype.column_names if c not in sent)
    return table.replace_schema_metadata({"connectbatch.absent": absent})


def split_reject_keys(out: CoreOutput) -> tuple[dict[int, str], dict[int, str]]:
    """The core's (key, qualifier) bytes of each rejected record as ParseResult's
    `reject_keys` and `reject_qualifiers` (text; a value not read is left out)."""
    keys: dict[int, str] = {}
    qualifiers: dict[int, str] = {}
    for line, (key, qualifier) in out.reject_keys.items():
        if key is not None:
            keys[line] = key.decode("utf-8", "replace")
        if qualifier is not None:
            qualifiers[line] = qualifier.decode("utf-8", "replace")
    return keys, qualifiers


@dataclass
class Head:
    """What a parse knows once it has read the header (and a settings line above it): the
    plan of the body, the body's first bytes and line number. `_parse` and the streamed
    parse (`parser.batches`) both start here."""

    header: list[str]
    plan: csvplan.Plan
    parse_dtype: schemas.DataType | None  # the data type as parsed: constants' columns relaxed
    timezone: str
    constants: dict[str, str]
    preamble: dict[str, str]
    rest: memoryview  # the body's first bytes, read with the header
    next_line: int


def _head(
    core: ModuleType, chunks: Iterator[bytes | memoryview], delim: int, dtype: schemas.DataType | None,
    options: ParseOptions, encoding: str,
) -> Head:  # fmt: skip
    fields, header_line, rest, next_line = _read_header(core, chunks, delim, dtype, options.column_map)
    preamble = _preamble(fields, delim)
    if preamble is not None:  # a settings line above the header: the header is the next record
        sep = preamble.pop(SEP_KEY, chr(delim))
        if sep != chr(delim):
            shown = "a tab" if sep == "\t" else repr(sep)
            raise ParseError(
                f"line {header_line}: the file names its delimiter ('sep={sep}' above the header): "
                f"set the connection's delimiter to {shown}"
            )
        skipped = next_line - 1
        fields, header_line, rest, next_line = _read_header(
            core, itertools.chain([bytes(rest)], chunks), delim, dtype, options.column_map
        )
        header_line, next_line = header_line + skipped, next_line + skipped
    timezone = _preamble_timezone(preamble) or options.timezone
    header = csvplan.decode_header(fields, header_line, encoding)
    constants = options.constants or {}
    parse_dtype = mapping_constants.relax(dtype, constants) if dtype is not None else None
    if parse_dtype is None:
        plan = csvplan.raw_plan(header, delim)
    else:
        plan = csvplan.typed_plan(header, parse_dtype, delim, options.column_map, header_line)
    if not _rows_end_with_delimiter(core, rest, delim, plan.ncols):
        plan = dataclasses.replace(plan, extra_empty_ok=False)
    return Head(header, plan, parse_dtype, timezone, constants, preamble or {}, rest, next_line)


def _preamble(fields: list[bytes], delim: int) -> dict[str, str] | None:
    """The settings of a `Parameters:` line (Google Ads puts its time zone there) or Excel's
    `sep=;` line (split in two when it names our own delimiter, and padded with more of it
    by LibreOffice or Google Sheets when they save it again), or None when the first record
    is the header itself.

    Empty cells after the first are ignored: Excel pads a one-cell line with delimiters to
    the table's width when it saves CSV (`Parameters:TimeZone=America/New_York,,,,`). A line
    with any other text after the first cell is a header (a one-cell line is a preamble
    only if it starts with `Parameters:` or is `sep=`, so a header never loses a column)."""
    if len(fields) >= 2 and not any(f.strip() for f in fields[2:]):  # `sep=;`, padded or not
        found = parse_preamble(bytes([delim]).join(fields[:2]).decode("utf-8", "replace"))
        if found is not None and SEP_KEY in found:
            return found
    if any(f.strip() for f in fields[1:]):
        return None
    return parse_preamble(fields[0].decode("utf-8", "replace"))


# A UTC offset as Google Ads writes it in its preamble ("+-HHMM"), or with a colon.
_UTC_OFFSET = re.compile(r"([+-])([0-9]{2}):?([0-9]{2})")
# The offsets in use run from UTC-12:00 to UTC+14:00, the range a date cell's own offset
# must keep to (refvalues): the preamble allowed -14:00 too, moving 10:00 to 23:30Z for -13:30.
MAX_EAST_MINUTES, MAX_WEST_MINUTES = 14 * 60, 12 * 60


def _preamble_timezone(preamble: dict[str, str] | None) -> str | None:
    """The file's own time zone: an IANA name, or a fixed UTC offset (`_fixed_offset`)."""
    if not preamble:
        return None
    value = next((v for k, v in preamble.items() if k.lower() == "timezone"), None)
    if not value:
        return None
    offset = _UTC_OFFSET.fullmatch(value)
    if offset:
        return _fixed_offset(value, *offset.groups())
    try:
        return check_timezone(value)
    except ConfigurationError:
        raise ParseError(
            f"the file's preamble names an unknown time zone: TimeZone={header_hints.cut(value)}"
        ) from None


def _fixed_offset(value: str, sign: str, hours: str, minutes: str) -> str:
    """+-HHMM as the fixed-offset zone "+-HH:MM", which is what the zone reaches: only
    Arrow (`plan._localise`) applies it, and Arrow reads such offsets as zones. zoneinfo
    names only whole hours (Etc/GMT-5) and not all of them (no Etc/GMT+14), so +0530
    (India), +0545 (Nepal) and -0930 had no name to go by."""
    total = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or total > (MAX_WEST_MINUTES if sign == "-" else MAX_EAST_MINUTES):
        raise ParseError(f"the file's TimeZone={value} is not a UTC offset from -12:00 to +14:00")
    return "UTC" if total == 0 else f"{sign}{hours}:{minutes}"


def check_timezone(timezone: str) -> str:
    """A connection setting is wrong or right whatever the file holds: check it up front
    (the parser itself only looks the zone up when a date without an offset needs it)."""
    try:
        zoneinfo.ZoneInfo(timezone)
    # OSError: a name zoneinfo turns into a path the file system refuses (too long, a
    # folder such as "America"); the name may come from a file's preamble (fuzz finding)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigurationError(
            f"unknown time zone {timezone!r}; use an IANA name such as UTC or America/New_York"
        ) from None
    return timezone


def _read_header(
    core: ModuleType,
    chunks: Iterator[bytes | memoryview],
    delim: int,
    dtype: schemas.DataType | None = None,
    column_map: dict[str, str] | None = None,
) -> tuple[list[bytes], int, memoryview, int]:
    """Accumulate chunks until the first record is complete; return it, its line, the rest
    of the buffer and the line the body starts on.

    Records of only blanks and delimiters above the header are skipped like blank lines: an
    Excel sheet whose table starts lower down saves its empty rows above it as ",,,,", and a
    hand-edited file may start with a line of spaces (both were taken for the header, and the
    file refused as lacking every required column)."""
    buf: bytes | memoryview = b""
    final = False
    skipped = 0  # lines of the blank records dropped from the front of buf
    while True:
        try:
            nxt = next(chunks)
            buf = nxt if not buf else bytes(buf) + bytes(nxt)  # no copy in the usual case
        except StopIteration:
            final = True
        status, fields, line, end, next_line = core.read_header(buf, delim, final)
        while status == csvplan.HeaderStatus.OK and _blank(buf[:end], delim):
            skipped += next_line - 1
            buf = memoryview(buf)[end:]
            status, fields, line, end, next_line = core.read_header(buf, delim, final)
        line += skipped
        if status == csvplan.HeaderStatus.OK:
            return fields, line, memoryview(buf)[end:], next_line + skipped
        if status == csvplan.HeaderStatus.EMPTY:
            raise ParseError("the file is empty: there is no header line")
        if status == csvplan.HeaderStatus.UNTERMINATED:
            raise ParseError(f"line {line}: the header has a quoted name that is never closed")
        if status == csvplan.HeaderStatus.JUNK:
            raise ParseError(
                f"line {line}: the header has text after a closing quote; "
                'quotes inside a quoted name must be doubled ("")'
                + _quoted_header_hint(core, buf, delim, dtype, column_map)
            )
        if len(buf) > MAX_HEADER_BYTES:
            raise ParseError(
                f"no complete header line in the first {MAX_HEADER_BYTES:,} bytes; "
                "is this a CSV file with the right delimiter?"
            )


# How many of the first data rows _rows_end_with_delimiter reads, within how many bytes (of
# those read with the header; the reference core copies what it is given on every call).
PEEK_ROWS, PEEK_BYTES = 100, 256 * 1024


def _rows_end_with_delimiter(core: ModuleType, rest: memoryview, delim: int, ncols: int) -> bool:
    """Whether the file's rows may end with a delimiter the header does not (Plan.extra_empty_ok):
    none of its first rows (up to PEEK_ROWS, in the bytes read with the header) has the
    header's count of fields. A file whose rows end with one all do; where one does not, a
    row with an empty field too many holds a value with an unquoted delimiter instead. No
    row there to tell: as before, one empty field too many fits."""
    rest = rest[:PEEK_BYTES]
    for _ in range(PEEK_ROWS):
        end_seen = bytes(rest[-1:]) == b"\n"  # the buffer's last record is complete
        status, fields, _line, end, _next = core.read_header(rest, delim, end_seen)
        if status != csvplan.HeaderStatus.OK:
            break
        if len(fields) == ncols and not _blank(rest[:end], delim):
            return False
        rest = rest[end:]
    return True


def _blank(record: bytes | memoryview, delim: int) -> bool:
    """Whether `record` (a first record's bytes, with the blank lines before it and its
    terminator) holds only blanks and delimiters: refcore.blank_record, the rows' rule (a
    quoted blank is a value someone wrote)."""
    return _refcore.blank_record(bytes(record).strip(b"\r\n"), delim)


def _quoted_header_hint(
    core: ModuleType,
    buf: bytes | memoryview,
    delim: int,
    dtype: schemas.DataType | None,
    column_map: dict[str, str] | None,
) -> str:
    """A quoted header ("a";"b") read with the wrong delimiter fails as text after a
    closing quote: say which delimiter would read it, as typed_plan does for unquoted ones."""
    if dtype is None:
        return ""
    try:
        renames = csvplan.normalised_column_map(column_map, dtype)
    except ConfigurationError:
        return ""

    def split(d: int) -> list[str] | None:
        status, fields, _line, _end, _next = core.read_header(buf, d, True)
        if status != csvplan.HeaderStatus.OK:
            return None
        return [f.decode("utf-8", "replace") for f in fields]

    return header_hints.delimiter_hint(split, delim, dtype, renames)
