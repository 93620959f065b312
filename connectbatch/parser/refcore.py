"""The pure-Python reference core: the executable specification of the parser.

Written for clarity, not speed. The Cython core (`_csvcore.pyx`) must produce identical
tables and rejects on every input; the parity tests (corpora + hypothesis) hold it to that.
Same interface as the Cython core: `read_header()` and a `Parser` fed with UTF-8 chunks.
This one simply waits for the last chunk and reads everything at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal

import pyarrow as pa

from connectbatch.parser.plan import (
    COUNTRY_CODES,
    CURRENCY_CODES,
    Code,
    CoreKind,
    CoreOutput,
    HeaderStatus,
    Plan,
    Slot,
)

# The names both cores export (see _csvcore.pyi); the values are plan.HeaderStatus.
HEADER_OK = HeaderStatus.OK
HEADER_INCOMPLETE = HeaderStatus.INCOMPLETE
HEADER_EMPTY = HeaderStatus.EMPTY
HEADER_UNTERMINATED = HeaderStatus.UNTERMINATED
HEADER_JUNK = HeaderStatus.JUNK
_INT64_MAX = 2**63 - 1
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


# ---------------------------------------------------------------- typed conversion

# What a cell may be padded with: ASCII space and tab, and the no-break space U+00A0 (UTF-8
# C2 A0) that spreadsheets and web exports put where a space was typed. A value made only of
# these is empty. C2 is a UTF-8 lead byte, so C2 A0 is U+00A0 wherever it stands in valid text.
_PAD_BYTES = (0x20, 0x09)
_NBSP = b"\xc2\xa0"
_INT_RE = re.compile(rb"[+-]?[0-9]+")
# [sign] (H...:MM:SS | M:SS | MM:SS | seconds) [.fraction]
_SECONDS_RE = re.compile(rb"([+-]?)([0-9]+)(?::([0-9]{2}))?(?::([0-9]{2}))?(?:\.([0-9]*))?")
# thousands groups lead with 1-999: 0,500 is a decimal comma (half a unit), never 500
_DECIMAL_RE = re.compile(rb"([+-]?)(\$?)([+-]?)([1-9][0-9]{0,2}(?:,[0-9]{3})+|[0-9]*)(?:\.([0-9]*))?")
_TS_RE = re.compile(
    rb"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    rb"(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]{1,9}))?)?"
    rb"(?: ?([Zz]|[+-][0-9]{2}(?::?[0-9]{2})?))?)?"
)
# ISO 8601 basic format (20260301, 20260301T140509Z, 20260301T1405+0100): same groups; the
# separator must be T (a space between basic date and time is no ISO form).
_TS_BASIC_RE = re.compile(
    rb"([0-9]{4})([0-9]{2})([0-9]{2})"
    rb"(?:[Tt]([0-9]{2})([0-9]{2})(?:([0-9]{2})(?:[.,]([0-9]{1,9}))?)?"
    rb"(?: ?([Zz]|[+-][0-9]{2}(?::?[0-9]{2})?))?)?"
)
_MIN_MICROS = -62135596800000000  # 0001-01-01T00:00:00Z
_MAX_MICROS = 253402300799999999  # 9999-12-31T23:59:59.999999Z
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class CellRejected(Exception):
    """A cell the converters refuse, with why (`code`); mapping/values.py asks `convert` the
    same question about a partner's sample cells."""

    def __init__(self, code: Code) -> None:
        self.code = code


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 (proleptic Gregorian), H. Hinnant's algorithm."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _timestamp(t: bytes) -> tuple[int, bool]:
    m = _TS_RE.fullmatch(t) or _TS_BASIC_RE.fullmatch(t)
    if not m:
        raise CellRejected(Code.BAD_TIMESTAMP)
    year, month, day = int(m[1]), int(m[2]), int(m[3])
    hour = int(m[4] or 0)
    minute = int(m[5] or 0)
    second = int(m[6] or 0)
    frac = int((m[7] or b"").ljust(6, b"0")[:6] or 0)
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    dim = 29 if month == 2 and leap else _DAYS_IN_MONTH[month - 1] if 1 <= month <= 12 else 0
    offset = 0
    tz = m[8]
    if tz and tz not in (b"Z", b"z"):
        oh = int(tz[1:3])
        om = int(tz[-2:]) if len(tz) > 3 else 0
        # The offsets in use run from -12:00 to +14:00: "+23:59" moved the call by a day
        if om > 59 or oh * 60 + om > (12 * 60 if tz[0:1] == b"-" else 14 * 60):
            raise CellRejected(Code.INVALID_DATE)
        offset = (oh * 3600 + om * 60) * (-1 if tz[0:1] == b"-" else 1)
    if year < 1 or not 1 <= day <= dim or hour > 23 or minute > 59 or second > 59:
        raise CellRejected(Code.INVALID_DATE)
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    micros = (seconds - offset) * 1_000_000 + frac
    if not _MIN_MICROS <= micros <= _MAX_MICROS:  # the offset pushed it past year 1 or 9999
        raise CellRejected(Code.INVALID_DATE)
    return micros, tz is None


def _integer(t: bytes) -> int:
    if not _INT_RE.fullmatch(t):
        raise CellRejected(Code.NOT_INTEGER)
    value = int(t)
    if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
        raise CellRejected(Code.INT_RANGE)
    return value


def _seconds(t: bytes) -> int:
    """A duration as whole seconds.

    Accepted: seconds (63, 63.0, 63.5), M:SS with any number of minute digits (1:03, 100:00),
    and H:MM:SS with any number of hour digits (0:01:03, 26:00:00); the seconds part may carry
    a fraction in every form.
    Fractions round half away from zero to whole seconds (63.5 -> 64, 63.49 -> 63): only the
    first fractional digit decides, so both cores round alike without decimal arithmetic.
    Checked in this order: the form (NOT_INTEGER), seconds 0-59 in clock forms and minutes
    0-59 in H:MM:SS (CLOCK_RANGE), the int64 range (INT_RANGE), then the sign: "-0" and "-0:00" are zero,
    any other negative duration (even -0.4) is NEGATIVE.
    """
    m = _SECONDS_RE.fullmatch(t)
    if not m:
        raise CellRejected(Code.NOT_INTEGER)
    first = int(m[2])
    frac = m[5] or b""
    if m[4] is not None:  # H:MM:SS
        minutes, secs = int(m[3]), int(m[4])
        if minutes > 59 or secs > 59:
            raise CellRejected(Code.CLOCK_RANGE)
        value = first * 3600 + minutes * 60 + secs
    elif m[3] is not None:  # M:SS, any number of minutes (100:00: a long call)
        secs = int(m[3])
        if secs > 59:
            raise CellRejected(Code.CLOCK_RANGE)
        value = first * 60 + secs
    else:
        value = first
    if frac[:1] >= b"5":
        value += 1
    if value > _INT64_MAX:
        raise CellRejected(Code.INT_RANGE)
    if m[1] == b"-" and (value or frac.strip(b"0")):
        raise CellRejected(Code.NEGATIVE)
    return value


# 1-3 digits before a point that could be a thousands group: not led by 0 (0.500 is half a
# unit), no comma groups (with 1,500.000 the point is a decimal point)
_THOUSANDS_LEAD = re.compile(rb"[1-9][0-9]{0,2}")


def _dot_between_thousands(whole: bytes, frac: bytes) -> bool:
    """Whether an amount the rule would accept reads both ways: 1.500 is 1.50 with a decimal
    point and 1500 with a point between thousands, as a decimal-comma locale writes it. It
    was loaded as 1.50, 1000 times too small, without a word; neither can be chosen."""
    return len(frac) == 3 and _THOUSANDS_LEAD.fullmatch(whole) is not None


def _decimal(t: bytes) -> Decimal:
    """An amount: [sign][$][sign] digits (or 1-3 digits then ,ddd groups) [.digits], at most
    one sign. At most 2 decimals unless the extra ones are zeros (12.340 is 12.34, 12.345 is
    DECIMAL_SCALE), except a point that may be between thousands (1.500: BAD_DECIMAL, which
    plan.decimal_hint words)."""
    m = _DECIMAL_RE.fullmatch(t)
    if not m or (m[1] and m[3]) or not (m[4] or m[5]):
        raise CellRejected(Code.BAD_DECIMAL)
    whole = int(m[4].replace(b",", b"") or 0)
    if whole >= 10**16:
        raise CellRejected(Code.DECIMAL_RANGE)
    frac = m[5] or b""
    if frac[2:].strip(b"0"):
        raise CellRejected(Code.DECIMAL_SCALE)
    if _dot_between_thousands(m[4], frac):
        raise CellRejected(Code.BAD_DECIMAL)
    cents = whole * 100 + int(frac[:2].ljust(2, b"0"))
    if b"-" in (m[1], m[3]):
        cents = -cents
    return Decimal(cents).scaleb(-2)


def _coded(t: bytes, slot: Slot) -> bytes:
    upper = t.upper()  # bytes.upper() touches ASCII letters only: "uſ" never becomes "US"
    if slot.kind is CoreKind.ENUM:
        for canonical in slot.allowed:
            if canonical.upper() == upper:
                return canonical
        raise CellRejected(Code.BAD_ENUM)
    if slot.kind is CoreKind.COUNTRY:
        if len(upper) == 2 and upper in COUNTRY_CODES:
            return upper
        raise CellRejected(Code.BAD_COUNTRY)
    if len(upper) == 3 and upper in CURRENCY_CODES:
        return upper
    raise CellRejected(Code.BAD_CURRENCY)


def _trim(v: bytes) -> bytes:
    """`v` without the spaces, tabs and no-break spaces it starts or ends with.

    A partner never means them, yet "5 ", " 5" and "5" + U+00A0 would otherwise be three
    values, or a value where the cell is really empty. Called on valid UTF-8 only."""
    start, end = 0, len(v)
    while start < end:
        if v[start] in _PAD_BYTES:
            start += 1
        elif v.startswith(_NBSP, start):
            start += 2
        else:
            break
    while end > start:
        if v[end - 1] in _PAD_BYTES:
            end -= 1
        elif end - start >= 2 and v[end - 2 : end] == _NBSP:
            end -= 2
        else:
            break
    return v[start:end]


def _is_text(v: bytes) -> bool:
    try:
        v.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def convert(v: bytes, slot: Slot) -> object:
    """One field to its Python value (None for null); raises CellRejected with the code.

    Every kind but RAW (a typed plan's columns) is trimmed of padding first (`_trim`), text
    too: a partner never means a leading or trailing space, and an untrimmed key made
    "w-1" and "w-1 " two calls, each with its own action. A value of only padding is empty.
    RAW (data_type=None) keeps the text exactly as written."""
    if b"\x00" in v:
        raise CellRejected(Code.NUL_BYTE)
    if not v.isascii() and not _is_text(v):
        raise CellRejected(Code.INVALID_TEXT)
    kind = slot.kind
    if kind is CoreKind.RAW:
        return v.decode()
    t = _trim(v)
    # The word NULL is an empty cell, as a database export writes one (the spec: "When NULL,
    # defaults to US"): no amount, no AdId, a required number missing. Except in a required
    # text column without a default, where it stays what the partner sent (a CallerId a vendor
    # could not read: an UNKNOWN_CALLERID call is still a call).
    kept = slot.required and kind is CoreKind.STRING and slot.default is None
    null = t.lower() == b"null" and not kept
    if not t or null:
        if slot.default is not None:
            return slot.default.decode()
        if slot.required:
            raise CellRejected(Code.REQUIRED_EMPTY)
        return None
    if kind is CoreKind.STRING:
        return t.decode()
    if kind is CoreKind.INTEGER:
        value = _integer(t)
        if value < 0 and slot.non_negative:  # "-0" is zero, as for durations
            raise CellRejected(Code.NEGATIVE)
        return value
    if kind is CoreKind.SECONDS:
        return _seconds(t)
    if kind is CoreKind.DECIMAL:
        return _decimal(t)
    if kind is CoreKind.TIMESTAMP:
        return _timestamp(t)
    return _coded(t, slot).decode()


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
        data = b"".join(self._chunks)
        for (line, fields, error, raw), _end, _next in _records(data, plan.delimiter, self.first_line):
            if error is not None:
                code, index = error
                rejects.append((line, index, int(code), fields[index], 0))
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
        return CoreOutput(arrays, pa.array(lines, pa.int64()), rejects, naive, reject_keys)
