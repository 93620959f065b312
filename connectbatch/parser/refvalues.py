"""The reference core's cell converters: one cell's bytes to its typed value, or why not.

Part of the executable specification (`parser/refcore.py`, whose records they convert); the
compiled core's `_core_values.pxi` and `_core_put.pxi` are held equal to them by the parity
tests. The mapping's sample check (mapping/values.py) and the modifications' amounts
(pipeline/lifecycle.py) ask `convert` too, so one rule decides everywhere.
"""

from __future__ import annotations

import re
from decimal import Decimal

from connectbatch.parser.plan import COUNTRY_CODES, CURRENCY_CODES, Code, CoreKind, Slot

_INT64_MAX = 2**63 - 1

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
    rb"(?: ?([Zz]|[Uu][Tt][Cc]|[+-][0-9]{2}(?::?[0-9]{2})?))?)?"
)
# ISO 8601 basic format (20260301, 20260301T140509Z, 20260301T1405+0100): same groups; the
# separator must be T (a space between basic date and time is no ISO form).
_TS_BASIC_RE = re.compile(
    rb"([0-9]{4})([0-9]{2})([0-9]{2})"
    rb"(?:[Tt]([0-9]{2})([0-9]{2})(?:([0-9]{2})(?:[.,]([0-9]{1,9}))?)?"
    rb"(?: ?([Zz]|[Uu][Tt][Cc]|[+-][0-9]{2}(?::?[0-9]{2})?))?)?"
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
    if tz and tz.upper() not in (b"Z", b"UTC"):  # UTC: as BigQuery writes a TIMESTAMP
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
    reasons.decimal_hint words)."""
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


def enum_form(v: bytes) -> bytes:
    """An allowed value's words in upper case without `_`, `-` or spaces between them:
    "in_stock", "In Stock" and "InStock" are one value (Google Merchant Center's spelling
    of schema.org's), "unknown callerid" is UNKNOWN_CALLERID."""
    return v.upper().translate(None, b"_- ")


def _coded(t: bytes, slot: Slot) -> bytes:
    upper = t.upper()  # bytes.upper() touches ASCII letters only: "uſ" never becomes "US"
    if slot.kind is CoreKind.ENUM:
        for canonical in slot.allowed:
            if enum_form(canonical) == enum_form(t):
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
    # defaults to US"): no amount, no AdId, a required value missing (a CallSessionId of NULL
    # was loaded as the key "NULL", and the next call without one was held as already loaded).
    # Except in the column whose empty cell a status excuses, where it stays what the partner
    # sent (a CallerId a vendor could not read: an UNKNOWN_CALLERID call is still a call).
    kept = slot.empty_when is not None
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
