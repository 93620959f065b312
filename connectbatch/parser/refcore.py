"""The pure-Python reference core: the executable specification of the parser.

Written for clarity, not speed. The Cython core (`_csvcore.pyx`) must produce identical
tables and rejects on every input; the parity tests (corpora + hypothesis) hold it to that.
Same interface as the Cython core: `read_header()` and a `Parser` fed with UTF-8 chunks.
This one simply waits for the last chunk and reads everything at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from connectbatch.parser.plan import Code, CoreKind, CoreOutput, HeaderStatus, Plan, Slot
from connectbatch.parser.refvalues import CellRejected, convert

__all__ = ["CellRejected", "Parser", "blank_record", "convert", "read_header"]  # convert: one rule for all

# The names both cores export (see _csvcore.pyi); the values are plan.HeaderStatus.
HEADER_OK = HeaderStatus.OK
HEADER_INCOMPLETE = HeaderStatus.INCOMPLETE
HEADER_EMPTY = HeaderStatus.EMPTY
HEADER_UNTERMINATED = HeaderStatus.UNTERMINATED
HEADER_JUNK = HeaderStatus.JUNK
_LF, _CR, _QUOTE = 0x0A, 0x0D, 0x22
# Ctrl-Z, the end-of-file mark DOS programs (and `copy /a`) leave after the last line. A
# record of only this byte holds no data, so it is skipped like a blank line, wherever it
# stands: a file joined from two such files has one in the middle.
DOS_EOF = b"\x1a"

BLANKS = b" \t"


def blank_record(raw: bytes, delimiter: int) -> bool:
    """A record of only the delimiter, spaces and tabs (",,,,", Excel's empty row, or a line
    of spaces) holds no data: it is skipped like a blank line, here and above the header."""
    return bool(raw) and not raw.strip(bytes([delimiter]) + BLANKS)


# (line the record starts on, unescaped field values, first structural error as
#  (code, field index) or None, the record's bytes without its terminator)
Record = tuple[int, list[bytes], tuple[Code, int] | None, bytes]


def _quoted(data: bytes, pos: int, line: int) -> tuple[bytes, int, int, bool]:
    """Read a quoted field's content from just after its opening quote.
    Returns (value, position after the closing quote, line, closed?)."""
    n = len(data)
    value = bytearray()
    while pos < n:
        c = data[pos]
        if c == _QUOTE:
            if pos + 1 < n and data[pos + 1] == _QUOTE:
                value.append(_QUOTE)
                pos += 2
                continue
            return bytes(value), pos + 1, line, True
        if c == _LF or (c == _CR and not (pos + 1 < n and data[pos + 1] == _LF)):
            line += 1
        value.append(c)
        pos += 1
    return bytes(value), pos, line, False


def _records(data: bytes, delim: int, line: int) -> Iterator[tuple[Record, int, int]]:
    """Yield (record, offset after it, line after it). Blank lines are skipped; LF, CRLF
    and CR each end one physical line, inside quotes too."""
    n = len(data)
    stops = (delim, _CR, _LF)
    pos = 0
    while pos < n:
        start, start_line = pos, line
        c = data[pos]
        if c in (_LF, _CR):
            pos += 2 if c == _CR and data[pos + 1 : pos + 2] == b"\n" else 1
            line += 1
            continue
        fields: list[bytes] = []
        error: tuple[Code, int] | None = None
        while True:
            fstart = pos
            if pos < n and data[pos] == _QUOTE:
                value, pos, line, closed = _quoted(data, pos + 1, line)
                if not closed:
                    error = error or (Code.UNTERMINATED_QUOTE, len(fields))
                elif pos < n and data[pos] not in stops:
                    while pos < n and data[pos] not in stops:
                        pos += 1
                    error = error or (Code.JUNK_AFTER_QUOTE, len(fields))
                    value = data[fstart:pos]
            else:
                while pos < n and data[pos] not in stops:
                    pos += 1
                value = data[fstart:pos]
            fields.append(value)
            if pos < n and data[pos] == delim:
                pos += 1
                continue
            break
        end = pos
        if pos < n:
            pos += 2 if data[pos] == _CR and data[pos + 1 : pos + 2] == b"\n" else 1
            line += 1
        yield (start_line, fields, error, data[start:end]), pos, line


def read_header(
    data: bytes | memoryview, delimiter: int, final: bool
) -> tuple[int, list[bytes], int, int, int]:
    """(status, fields, header line, end offset, next line).

    Before the last chunk, a record counts as complete only when bytes follow its
    terminator: then no later byte can change how it was read."""
    data = bytes(data)
    for (line, fields, error, _raw), end, next_line in _records(data, delimiter, 1):
        if not final and end >= len(data):
            break
        if error is not None:
            if error[0] is Code.UNTERMINATED_QUOTE:
                return HeaderStatus.UNTERMINATED, [], line, 0, 0
            return HeaderStatus.JUNK, [], line, 0, 0
        return HeaderStatus.OK, fields, line, end, next_line
    return (HeaderStatus.EMPTY if final else HeaderStatus.INCOMPLETE), [], 0, 0, 0


_TEXT = (CoreKind.STRING, CoreKind.RAW)
_ARROW = {
    CoreKind.STRING: pa.string(),
    CoreKind.RAW: pa.string(),
    CoreKind.INTEGER: pa.int64(),
    CoreKind.SECONDS: pa.int64(),
    CoreKind.DECIMAL: pa.decimal128(18, 2),
    CoreKind.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    CoreKind.ENUM: pa.string(),
    CoreKind.COUNTRY: pa.string(),
    CoreKind.CURRENCY: pa.string(),
}


def _fit(fields: list[bytes], plan: Plan) -> list[bytes] | None:
    """The fields of a record whose count differs from the header's, made to fit, or None.

    Only the two shapes a trailing delimiter on one side leaves behind fit, because they
    lose nothing: one extra field at the end that is empty (the rows end with a delimiter,
    the header does not: `plan.extra_empty_ok`, from the file's first rows), which is
    dropped; and one field short when the header's last
    field has no name (the header ends with a delimiter, the rows do not), which is read as
    empty. Every other count is a FIELD_COUNT reject."""
    if len(fields) == plan.ncols + 1 and not fields[-1] and plan.extra_empty_ok:
        return fields[:-1]
    if len(fields) == plan.ncols - 1 and plan.last_column_unnamed:
        return [*fields, b""]
    return None


def _excused(fields: list[bytes], plan: Plan, slot: Slot) -> bool:
    """Whether `slot`'s required cell, empty in this record, may stay empty (null): the
    record's cell of the column `slot.empty_when` names was read fine as its value (an empty
    CallerId of a call whose CallStatus is UNKNOWN_CALLERID, in any case the status is read
    in). Wherever that cell stands in the record; a status that is itself refused excuses
    nothing."""
    if slot.empty_when is None:
        return False
    by, value = slot.empty_when
    index = plan.field_slot.index(by)
    try:
        return convert(fields[index], plan.slots[by]) == value.decode()
    except CellRejected:
        return False


def _key_before(fields: list[bytes], index: int, plan: Plan, slot: int) -> bytes | None:
    """The value of `slot` (the key or its qualifier) in a record refused for its quoting at
    field `index`, read as a good record's would be when its field comes before that one (the
    fields up to it were cut right), else None: the results file can still name the record."""
    if slot < 0 or slot not in plan.field_slot:
        return None
    at = plan.field_slot.index(slot)
    if at >= index:
        return None
    try:
        value = convert(fields[at], plan.slots[slot])
    except CellRejected:
        return None
    return value.encode() if isinstance(value, str) else None


class Parser:
    """Reference core: collects the chunks, then tokenizes and converts at the end."""

    def __init__(self, plan: Plan, first_line: int) -> None:
        self.plan = plan
        self.first_line = first_line
        self._chunks: list[bytes] = []
        self.rows = 0
        self.bytes_consumed = 0

    def feed(self, data: bytes | memoryview, final: bool) -> None:
        self._chunks.append(bytes(data))
        self.bytes_consumed += len(data)

    def finish(self) -> CoreOutput:
        plan = self.plan
        columns: list[list[object]] = [[] for _ in plan.slots]
        lines: list[int] = []
        rejects: list[tuple[int, int, int, bytes, int]] = []
        reject_keys: dict[int, tuple[bytes | None, bytes | None]] = {}
        broken: list[tuple[int, int]] = []
        data = b"".join(self._chunks)
        for (line, fields, error, raw), _end, _next in _records(data, plan.delimiter, self.first_line):
            if error is not None:
                code, index = error
                rejects.append((line, index, int(code), fields[index], 0))
                before = (
                    _key_before(fields, index, plan, plan.key_slot),
                    _key_before(fields, index, plan, plan.qualifier_slot),
                )
                if before != (None, None):
                    reject_keys[line] = before
                continue
            if blank_record(raw, plan.delimiter):
                continue  # nothing but delimiters and blanks (a spreadsheet's empty row): a blank line
            if raw == DOS_EOF:
                continue
            if len(fields) != plan.ncols:
                fitted = _fit(fields, plan)
                if fitted is None:
                    rejects.append((line, -1, int(Code.FIELD_COUNT), raw, len(fields)))
                    continue
                fields = fitted
            row: list[tuple[int, object]] = []
            bad = False
            for index, value in enumerate(fields):
                slot_index = plan.field_slot[index]
                if slot_index < 0:
                    continue
                if plan.slots[slot_index].kind in _TEXT and (b"\n" in value or b"\r" in value):
                    broken.append((line, index))  # only a quoted field holds one (CoreOutput.broken)
                try:
                    row.append((slot_index, convert(value, plan.slots[slot_index])))
                except CellRejected as rej:
                    if rej.code is Code.REQUIRED_EMPTY and _excused(fields, plan, plan.slots[slot_index]):
                        row.append((slot_index, None))
                        continue
                    rejects.append((line, index, int(rej.code), value, 0))
                    bad = True
            if bad:
                read = dict(row)  # the slots read fine
                key, qualifier = (read.get(s) for s in (plan.key_slot, plan.qualifier_slot))
                pair = (
                    key.encode() if isinstance(key, str) else None,
                    qualifier.encode() if isinstance(qualifier, str) else None,
                )
                if pair != (None, None):
                    reject_keys[line] = pair
                continue
            for slot_index, converted in row:
                columns[slot_index].append(converted)
            lines.append(line)
        self.rows = len(lines)
        arrays: list[pa.Array] = []
        naive: dict[int, pa.Array] = {}
        for i, slot in enumerate(plan.slots):
            values = columns[i]
            if slot.kind is CoreKind.TIMESTAMP:
                naive[i] = pa.array([v is not None and v[1] for v in values], pa.bool_())  # type: ignore[index]
                values = [None if v is None else v[0] for v in values]  # type: ignore[index]
            arrays.append(pa.array(values, _ARROW[slot.kind]))
        return CoreOutput(arrays, pa.array(lines, pa.int64()), rejects, naive, reject_keys, broken)
