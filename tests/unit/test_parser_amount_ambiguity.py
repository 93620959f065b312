"""An amount written like a thousands grouping with a point (1.500, 12.000) is refused, on both cores.

A partner whose spreadsheet is set to a decimal-comma locale (German, French, Italian, ...)
writes one thousand five hundred as 1.500. Read with a decimal point it is 1.50 (the third
decimal is a zero, which the amount rule lets through), so the action was created 1000 times
too small without a word. Neither reading can be chosen for the partner, so such a value is
rejected and the reason says what to send instead, as the "decimal comma?" hint does for 12,50.

What stays accepted: every other shape the rule accepted before (1.5, 1.50, 250.000000,
1,500, 1,500.000, 0.500, ...). A group cannot lead with 0 (0.500 is half a unit, never 500)
and needs 1-3 digits before the point (1500.000 is no grouping).
"""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectbatch.parser import reasons, refcore
from connectbatch.parser.api import ParseResult, parse_bytes
from connectbatch.parser.plan import Code, CoreKind, Slot

BAD_AMOUNT = "expected an amount such as 12.50, 1,234.50 or $12.50"
AMBIGUOUS = "ambiguous: "
SCALE = "amount has more than 2 decimal places"
HEADER = [
    "CampaignId", "MediaId", "EventDate", "ActionTrackerId", "CallProvider", "CallSessionId",
    "CallerId", "CalledPhoneNumber", "CallDuration", "TalkDuration", "SaleAmount",
]  # fmt: skip
ROW = ["1234", "98765", "2026-03-01T14:05:09Z", "20001", "Invoca", "cs-1", "+15551234567", "+18005550100"]
ROW += ["185", "160"]


def amounts_file(*amounts: str) -> bytes:
    """A call-conversion file with one row per amount (SaleAmount last)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for i, amount in enumerate(amounts):
        writer.writerow([*ROW[:5], f"cs-{i}", *ROW[6:], amount])
    return out.getvalue().encode()


def parse(engine: str, *amounts: str) -> ParseResult:
    return parse_bytes(amounts_file(*amounts), "call_conversions", engine=engine)  # type: ignore[arg-type]


def outcome(engine: str, amount: str) -> Decimal | str | None:
    """The amount loaded, or the reject's reason."""
    result = parse(engine, amount)
    if result.rejects:
        assert [(r.line, r.column) for r in result.rejects] == [(2, "SaleAmount")]
        return result.rejects[0].reason
    value: Decimal | None = result.table.column("SaleAmount")[0].as_py()
    return value


# ------------------------------------------------------------------ the values a partner sends

# value -> (what it reads as, with a decimal point; what it is written like, with commas; the
# sign it keeps)
AMBIGUOUS_VALUES = [
    ("1.500", "1.50", "1,500", "1500"),
    ("2.000", "2.00", "2,000", "2000"),
    ("12.000", "12.00", "12,000", "12000"),
    ("999.990", "999.99", "999,990", "999990"),
    ("-1.500", "-1.50", "-1,500", "-1500"),
    ("+1.500", "+1.50", "+1,500", "+1500"),
    ("$1.500", "1.50", "1,500", "1500"),
    ("-$1.500", "-1.50", "-1,500", "-1500"),
    ("$-1.500", "-1.50", "-1,500", "-1500"),
    (" 1.500 ", "1.50", "1,500", "1500"),
    ("\u00a01.500\u00a0", "1.50", "1,500", "1500"),
]


@pytest.mark.parametrize(("text", "reads", "written", "whole"), AMBIGUOUS_VALUES)
def test_an_amount_written_like_a_thousands_grouping_is_rejected_saying_what_to_send(
    engine: str, text: str, reads: str, written: str, whole: str
) -> None:
    """1.500 loaded as 1.50 where the partner meant 1500: refused, and the reason names both
    readings and the two ways to write the amount that cannot be misread."""
    reason = outcome(engine, text)
    assert reason == (
        f"{BAD_AMOUNT} (ambiguous: {text.strip()} reads as {reads} but is written like {written} "
        f"with a point between thousands; send {reads} or {whole})"
    )


@pytest.mark.parametrize(
    ("text", "whole"),
    [("1.500.000", "1500000"), ("12.345.670", "12345670"), ("-$1.000.000", "-1000000"),
     ("1.500.000.00", None)],
)  # fmt: skip
def test_points_between_several_thousands_groups_are_named_in_the_reason(
    engine: str, text: str, whole: str | None
) -> None:
    """1.500.000 was refused already (two points), with no word of what was wrong."""
    reason = outcome(engine, text)
    assert isinstance(reason, str) and reason.startswith(BAD_AMOUNT)
    if whole is None:  # not a grouping: no hint
        assert reason == BAD_AMOUNT
    else:
        assert reason.endswith(f" (points between thousands? send {whole})")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.5", "1.50"), ("1.50", "1.50"), ("12.50", "12.50"), ("250.000000", "250.00"),
     ("1.5000", "1.50"), ("1,500", "1500.00"), ("1,500.00", "1500.00"), ("1,500.000", "1500.00"),
     ("12,500.5", "12500.50"), ("1500.000", "1500.00"), ("0.500", "0.50"), ("0.000", "0.00"),
     (".500", "0.50"), ("01.500", "1.50"), ("-0.500", "-0.50"), ("$0.500", "0.50"),
     ("1000.000", "1000.00"), ("1.0", "1.00"), ("1", "1.00")],
)  # fmt: skip
def test_amounts_that_cannot_be_a_thousands_grouping_are_still_accepted(
    engine: str, text: str, expected: str
) -> None:
    """More or fewer than three decimals, a comma grouping, a group leading with 0 or more
    than three digits before the point: only one reading, as before."""
    assert outcome(engine, text) == Decimal(expected)


@pytest.mark.parametrize(
    ("text", "reason"),
    [("10.005", SCALE), ("1.505", SCALE), ("12.345", SCALE),
     ("12,50", f"{BAD_AMOUNT} (a decimal comma? write 12.50: a point before the cents)"),
     ("1.500,00", f"{BAD_AMOUNT} (a decimal comma? write 1500.00: a point before the cents)"),
     ("1.500,5", f"{BAD_AMOUNT} (a decimal comma? write 1500.5: a point before the cents)"),
     ("1.50.0", BAD_AMOUNT), ("1.500x", BAD_AMOUNT), ("+-1.500", BAD_AMOUNT)],
)  # fmt: skip
def test_the_other_amount_refusals_keep_their_reasons(engine: str, text: str, reason: str) -> None:
    """10.005 was and stays "more than 2 decimal places" (no reading of it is an amount of
    cents either way); a decimal comma keeps its own hint."""
    assert outcome(engine, text) == reason


def test_an_ambiguous_amount_rejects_its_row_only(engine: str) -> None:
    result = parse(engine, "1.50", "1.500", "1500", "")
    assert [(r.line, r.column, r.value) for r in result.rejects] == [(3, "SaleAmount", "1.500")]
    assert result.table.column("SaleAmount").to_pylist() == [Decimal("1.50"), Decimal("1500.00"), None]


def test_the_cell_rule_says_bad_decimal_for_an_ambiguous_amount() -> None:
    """`refcore.convert` is the one rule: the mapping's sample check and typed amounts use it."""
    slot = Slot("SaleAmount", CoreKind.DECIMAL, False, None)
    with pytest.raises(refcore.CellRejected) as caught:
        refcore.convert(b"1.500", slot)
    assert caught.value.code is Code.BAD_DECIMAL
    assert refcore.convert(b"0.500", slot) == Decimal("0.50")


def test_the_hint_is_only_for_values_written_as_a_grouping() -> None:
    assert reasons.decimal_hint("abc") == ""
    assert reasons.decimal_hint("1500.000") == ""
    assert reasons.decimal_hint("0.500") == ""
    assert reasons.decimal_hint("10.005") == ""  # a DECIMAL_SCALE reject never asks, but still
    assert reasons.decimal_hint("1.500").startswith(" (ambiguous: 1.500 reads as 1.50")


# ------------------------------------------------------------------ the boundary, generated

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PREFIXES = ["", "-", "+", "$", "-$", "$-", "+$", "$+", " ", "\u00a0", "--"]
digits = st.text(alphabet="0123456789", min_size=0, max_size=5)
grouped = st.lists(st.text(alphabet="0123456789", min_size=3, max_size=3), min_size=1, max_size=2)
wholes = st.one_of(
    digits,
    st.builds(
        lambda lead, groups: lead + "," + ",".join(groups), st.sampled_from(["1", "12", "999"]), grouped
    ),
    st.builds(
        lambda lead, groups: lead + "." + ".".join(groups), st.sampled_from(["1", "12", "999"]), grouped
    ),
)
fractions = st.one_of(st.just(None), digits, st.sampled_from(["0", "00", "000", "500", "990", "0000"]))


def amount_text(prefix: str, whole: str, fraction: str | None) -> str:
    return prefix + whole + ("" if fraction is None else "." + fraction)


def expected_outcome(text: str) -> str:
    """The rule, written out: 'ambiguous', 'scale', 'bad' or 'ok' (a blank cell is null)."""
    if not text.strip(" \u00a0"):
        return "ok"
    m = re.fullmatch(r"[ \u00a0]*([+-]?)\$?([+-]?)([0-9,]*)(?:\.([0-9]*))?[ \u00a0]*", text)
    if m is None or (m[1] and m[2]):
        return "bad"
    whole, fraction = m[3], m[4] or ""
    if "," in whole and not re.fullmatch(r"[1-9][0-9]{0,2}(,[0-9]{3})+", whole):
        return "bad"
    if not whole and m[4] is None:
        return "bad"
    if not (whole or fraction):
        return "bad"
    if fraction[2:].strip("0"):
        return "scale"
    if len(fraction) == 3 and re.fullmatch(r"[1-9][0-9]{0,2}", whole):
        return "ambiguous"
    return "ok"


def kind_of(reason: Decimal | str | None) -> str:
    if not isinstance(reason, str):
        return "ok"
    if reason == SCALE:
        return "scale"
    return "ambiguous" if AMBIGUOUS in reason else "bad"


@FAST
@given(prefix=st.sampled_from(PREFIXES), whole=wholes, fraction=fractions)
def test_the_boundary_of_the_rule_on_both_cores(prefix: str, whole: str, fraction: str | None) -> None:
    """Every amount shape near the boundary: both cores agree with each other and with the
    rule written out above (multi-point groupings are 'bad' whatever the hint says)."""
    text = amount_text(prefix, whole, fraction)
    python, cython = outcome("python", text), outcome("cython", text)
    assert cython == python
    expected = expected_outcome(text)
    got = kind_of(python)
    if whole.count(".") > 1 or ("." in whole and fraction is not None):  # 1.500.000: refused already
        assert got in ("bad", "ambiguous") and isinstance(python, str)
        assert python.startswith(BAD_AMOUNT)
        return
    assert got == expected, (text, python)


@FAST
@given(amounts=st.lists(st.builds(amount_text, st.sampled_from(PREFIXES), wholes, fractions), max_size=6))
def test_files_of_amounts_parse_identically_on_both_cores(amounts: list[str]) -> None:
    data = amounts_file(*amounts)

    def seen(engine: str) -> tuple[Any, ...]:
        r = parse_bytes(data, "call_conversions", engine=engine)  # type: ignore[arg-type]
        return r.table.to_pylist(), r.rejects, r.lines.to_pylist(), r.reject_keys

    assert seen("cython") == seen("python")
