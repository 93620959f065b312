"""What a rejected value's line in the results says: the sentence for each code the cores
give (`sentence`) and the hint that follows it for the usual mistakes (a country name, a
decimal comma, a quote never closed), put together once per reject (`reject`). Both cores
give the same codes, so the wording lives here once, and a partner reads the same sentence
whichever core parsed the file.
"""

from __future__ import annotations

import re

from connectbatch.parser import header_hints
from connectbatch.parser.plan import ENCODING_HINT, Code, CoreKind, Plan, Slot
from connectbatch.parser.rejects import Reject
from connectbatch.schemas import codes

__all__ = [
    "DURATION_FORMS", "country_hint", "decimal_hint", "line_breaks", "reject", "run_on_hint", "sentence",
    "unclosed_hint",
]  # fmt: skip

# What a duration cell may hold, named in every duration reject.
DURATION_FORMS = (
    "seconds such as 63 or 63.5 (rounded half up to whole seconds), "
    "M:SS such as 1:03 or 100:00, or H:MM:SS such as 0:01:03"
)


_DELIMITER_NAMES = {ord(","): "a comma", ord(";"): "a semicolon", ord("\t"): "a tab", ord("|"): "a '|'"}


def sentence(code: int, slot: Slot | None, plan: Plan, extra: int, encoding: str) -> str:
    """The sentence a person reads for one reject."""
    kind = slot.kind if slot is not None else None
    match Code(code):
        case Code.FIELD_COUNT:
            if extra <= plan.ncols:
                return f"expected {plan.ncols} fields, saw {extra}"
            # More fields than names: most often a value holding the delimiter, unquoted
            # ("$1,234.50", "Austin, TX"), which split it in two.
            shown = _DELIMITER_NAMES.get(plan.delimiter, repr(chr(plan.delimiter)))
            return (
                f"expected {plan.ncols} fields, saw {extra}; a value holding {shown} must be in double quotes"
            )
        case Code.INVALID_TEXT:
            hint = ENCODING_HINT if encoding == "utf-8" else ""
            return f"contains bytes that are not valid {encoding} text{hint}"
        case Code.NUL_BYTE:
            return "contains a NUL byte (binary data is not allowed)"
        case Code.REQUIRED_EMPTY:
            return "is required and must not be empty"
        case Code.NOT_INTEGER if kind is CoreKind.SECONDS:
            return f"expected a duration: {DURATION_FORMS}"
        case Code.NOT_INTEGER:
            return "expected a whole number (ASCII digits 0-9, no separators)"
        case Code.INT_RANGE:
            return "number is too large (at most 9223372036854775807)"
        case Code.NEGATIVE:
            return "must not be negative"
        case Code.CLOCK_RANGE:
            return f"minutes and seconds of a duration must be 0-59; expected {DURATION_FORMS}"
        case Code.NOT_WHOLE:
            return "expected whole seconds such as 63 or 63.0, not a fraction"
        case Code.BAD_TIMESTAMP:
            return (
                "expected an ISO 8601 date-time such as 2026-03-01T14:05:09Z, "
                "2026-03-01 14:05:09+02:00, 2026-03-01 14:05:09 UTC, 2026-03-01, 20260301T140509Z or 20260301"
            )
        case Code.INVALID_DATE:
            return (
                "not a real date or time "
                "(month 1-12, day within the month, hour 0-23, minute and second 0-59, "
                "a UTC offset from -12:00 to +14:00)"
            )
        case Code.BAD_DECIMAL:
            return "expected an amount such as 12.50, 1,234.50 or $12.50"
        case Code.DECIMAL_SCALE:
            return "amount has more than 2 decimal places"
        case Code.DECIMAL_RANGE:
            return "amount is too large (at most 16 digits before the decimal point)"
        case Code.BAD_ENUM:
            allowed = ", ".join(v.decode() for v in slot.allowed) if slot else ""
            return f"expected one of {allowed}"
        case Code.BAD_COUNTRY:
            return "expected a two-letter ISO 3166-1 alpha-2 country code such as US"
        case Code.BAD_CURRENCY:
            return "expected a three-letter ISO 4217 currency code such as USD"
        case Code.UNTERMINATED_QUOTE:
            return "a quoted field starts in this record but is never closed (missing closing quote)"
        case Code.JUNK_AFTER_QUOTE:
            return 'unexpected text after a closing quote; a quote inside a quoted field must be doubled ("")'
    raise AssertionError(code)  # pragma: no cover


def country_hint(value: str) -> str:
    hint = codes.COUNTRY_HINTS.get(value.strip().upper()) if value.isascii() else None
    return f" (use {hint})" if hint else ""


# An amount written with a decimal comma, as a spreadsheet set to German, French, Italian, ...
# exports it: 12,50 or 1.250,00 (points between thousands), with an optional sign and symbol.
_DECIMAL_COMMA = re.compile(
    r"^(?P<sign>[-+]?)[$€£]?\s*(?P<whole>\d{1,3}(?:\.\d{3})+|\d+),(?P<cents>\d{1,2}|(?<=0,)\d{3})$"
)


# An amount written like thousands with points between them, as the same locales export
# 1500 and 1500000: 1.500, $1.500, -1.500.000 (at most one sign, as the cores take it). A
# group leads with 1-9 (0.500 is half a unit); the cores refuse one group whose third decimal
# is 0 (refvalues._dot_between_thousands) and several groups as no amount at all.
_POINT_THOUSANDS = re.compile(
    r"^(?P<sign>[-+]?)\$?(?P<sign2>[-+]?)(?P<lead>[1-9]\d{0,2})(?P<groups>(?:\.\d{3})+)$"
)


def decimal_hint(value: str) -> str:
    """What a BAD_DECIMAL value was most likely meant as, to write instead: the partner whose
    export used the wrong locale learns the one change that fixes every row.

    A decimal comma (12,50) says the amount with a point; a point between thousands says
    both readings of 1.500 (1.50, or 1500 as the partner meant) and how to send either so
    it cannot be misread, and what 1.500.000 is without its points."""
    found = _DECIMAL_COMMA.match(value.strip())
    if found is not None:
        whole = found["whole"].replace(".", "")
        return f" (a decimal comma? write {found['sign']}{whole}.{found['cents']}: a point before the cents)"
    grouped = _POINT_THOUSANDS.match(value.strip())
    if grouped is None or (grouped["sign"] and grouped["sign2"]):
        return ""
    sign, lead, groups = grouped["sign"] or grouped["sign2"], grouped["lead"], grouped["groups"]
    if groups.count(".") > 1:
        return f" (points between thousands? send {sign}{lead}{groups.replace('.', '')})"
    if not groups.endswith("0"):
        return ""  # 10.005: refused for its third decimal (DECIMAL_SCALE), not as a grouping
    reads, written = f"{sign}{lead}.{groups[1:3]}", f"{sign}{lead},{groups[1:]}"
    return (
        f" (ambiguous: {value.strip()} reads as {reads} but is written like {written} with a point "
        f"between thousands; send {reads} or {sign}{lead}{groups[1:]})"
    )


def line_breaks(value: bytes) -> int:
    """Line breaks inside a rejected value (LF, CRLF or a lone CR; one that ends it not
    counted): the lines after the record's first that went into it."""
    body = value.rstrip(b"\r\n")
    return body.count(b"\n") + body.count(b"\r") - body.count(b"\r\n")


def _lines(n: int) -> str:
    return f"{n:,} line{'s' if n > 1 else ''}"


def unclosed_hint(lines: int) -> str:
    """How many lines an unclosed quote took into its field: they are in no row of the
    results, so the partner's count of rows would not add up without it."""
    if not lines:
        return ""
    return f"; the {_lines(lines)} after it, to the end of the file, went into it"


def run_on_hint(line: int, lines: int) -> str:
    """Where a record that a stray quote ran on over later lines ended: those lines are in
    no row of the results (they went into this one), which the partner must learn here."""
    if not lines:
        return ""
    return (
        f"; a quote opened on line {line:,} closes only on line {line + lines:,}, "
        f"so the {_lines(lines)} after line {line:,} went into this record"
    )


def reject(
    plan: Plan,
    raw: tuple[int, int, int, bytes, int],
    encoding: str,
    memo: dict[tuple[int, int, int], tuple[str | None, str]] | None = None,
) -> Reject:
    """One raw reject of the core as a Reject. The column and the sentence depend only on
    (field, code, extra), so `memo` (one per parse) keeps them: a file's rejects repeat a
    few kinds, and building the sentence was most of the serial time after a threaded parse."""
    line, index, code, value, extra = raw
    key = (index, code, extra)
    known = memo.get(key) if memo is not None else None
    if known is None:
        slot_index = plan.field_slot[index] if 0 <= index < plan.ncols else -1
        slot = plan.slots[slot_index] if slot_index >= 0 else None
        reason = sentence(code, slot, plan, extra, encoding)
        if slot is not None and plan.header[index].strip().lower() != slot.name.lower():
            # Mapped from another name: the partner finds the value under their own header.
            reason += f' (the file\'s column "{header_hints.cut(plan.header[index].strip())}")'
        known = (plan.column_of(index), reason)
        if memo is not None:
            memo[key] = known
    column, reason = known
    text = value.decode("utf-8", "replace")
    breaks = line_breaks(value)
    if code == Code.BAD_COUNTRY:
        reason += country_hint(text)
    elif code == Code.UNTERMINATED_QUOTE:
        reason += unclosed_hint(breaks)
    elif code == Code.BAD_DECIMAL:
        reason += decimal_hint(text)
    elif code in (Code.JUNK_AFTER_QUOTE, Code.FIELD_COUNT):
        reason += run_on_hint(line, breaks)
    return Reject(line, column, header_hints.cut(text), reason, 1 + breaks)
