"""A call whose CallStatus is UNKNOWN_CALLERID may come without a CallerId, on both cores.

The spec lists CallerId as required and, among the valid CallStatus values, UNKNOWN_CALLERID:
the call tracker could not read the caller's number. Such a row came with an empty CallerId
and was refused ("is required and must not be empty"), so every call from a withheld number
was lost. The cell may now be empty in exactly that case (the CallerId is stored as null);
with any other status, an empty or absent CallStatus (ANSWER) or no CallStatus column, an
empty CallerId is refused as before. The status may stand before or after CallerId in the
file, so the compiled core decides at the end of the record; its rejects stay in field order.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import pytest
from helpers.parse_outcome import compiled_core
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectbatch import schemas
from connectbatch.parser import plan as csvplan
from connectbatch.parser import reasons, refcore
from connectbatch.parser.api import ParseResult, parse_bytes

CC = schemas.get("call_conversions")
REQUIRED = "is required and must not be empty"
VALUES = {
    "CampaignId": "1234", "MediaId": "98765", "EventDate": "2026-03-01T14:05:09Z",
    "ActionTrackerId": "20001", "CallProvider": "Invoca", "CallSessionId": "cs-0",
    "CallerId": "+15551234567", "CalledPhoneNumber": "+18005550100", "CallDuration": "185",
    "TalkDuration": "160",
}  # fmt: skip
BASE = list(VALUES)
STATUS_FIRST = ["CallStatus", *BASE]  # the status read before the CallerId
STATUS_LAST = [*BASE, "CallStatus"]
STATUS_MIDDLE = [*BASE[:3], "SaleAmount", "CallStatus", *BASE[3:]]


def call_file(header: Sequence[str], *rows: dict[str, str]) -> bytes:
    """A file of `header`'s columns; each row names what differs from VALUES, a fresh
    CallSessionId per row unless it names one."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for i, row in enumerate(rows):
        cells = {**VALUES, "CallSessionId": f"cs-{i}", **row}
        writer.writerow([cells.get(name, "") for name in header])
    return out.getvalue().encode()


def parse(engine: str, header: Sequence[str], *rows: dict[str, str], **kw: Any) -> ParseResult:
    return parse_bytes(call_file(header, *rows), "call_conversions", engine=engine, **kw)  # type: ignore[arg-type]


def rejects(result: ParseResult) -> list[tuple[int, str | None, str | None, str]]:
    return [(r.line, r.column, r.value, r.reason) for r in result.rejects]


# ------------------------------------------------------------------ accepted


@pytest.mark.parametrize(
    "header", [STATUS_FIRST, STATUS_LAST, STATUS_MIDDLE], ids=["first", "last", "middle"]
)
@pytest.mark.parametrize(
    "status", ["UNKNOWN_CALLERID", "unknown_callerid", "Unknown_CallerId", " UNKNOWN_CALLERID\u00a0"]
)
@pytest.mark.parametrize("caller", ["", "  ", "\u00a0", "\t"], ids=["empty", "spaces", "nbsp", "tab"])
def test_a_call_with_unknown_caller_id_is_accepted_without_one(
    engine: str, header: list[str], status: str, caller: str
) -> None:
    result = parse(engine, header, {"CallerId": caller, "CallStatus": status})
    assert rejects(result) == []
    assert result.table.column("CallerId").to_pylist() == [None]
    assert result.table.column("CallStatus").to_pylist() == ["UNKNOWN_CALLERID"]


def test_a_caller_id_sent_with_that_status_is_kept(engine: str) -> None:
    result = parse(
        engine,
        STATUS_LAST,
        {"CallStatus": "UNKNOWN_CALLERID"},
        {"CallerId": "NULL", "CallStatus": "UNKNOWN_CALLERID"},
    )
    assert rejects(result) == []
    assert result.table.column("CallerId").to_pylist() == ["+15551234567", "NULL"]


# ------------------------------------------------------------------ still refused


@pytest.mark.parametrize(
    "header", [STATUS_FIRST, STATUS_LAST, STATUS_MIDDLE], ids=["first", "last", "middle"]
)
@pytest.mark.parametrize("status", ["ANSWER", "failure", "", "NULL", "  "])
def test_an_empty_caller_id_with_any_other_status_is_still_refused(
    engine: str, header: list[str], status: str
) -> None:
    result = parse(engine, header, {"CallerId": "", "CallStatus": status}, {})
    assert rejects(result) == [(2, "CallerId", "", REQUIRED)]
    assert result.lines.to_pylist() == [3]
    assert result.reject_keys == {2: "cs-0"}  # the row is still named in the results file


def test_an_empty_caller_id_without_a_call_status_column_is_still_refused(engine: str) -> None:
    result = parse(engine, BASE, {"CallerId": ""}, {"CallerId": " "}, {})
    assert rejects(result) == [(2, "CallerId", "", REQUIRED), (3, "CallerId", " ", REQUIRED)]
    assert result.lines.to_pylist() == [4]


@pytest.mark.parametrize("header", [STATUS_FIRST, STATUS_LAST], ids=["first", "last"])
def test_a_status_that_is_refused_does_not_excuse_the_caller_id(engine: str, header: list[str]) -> None:
    """UNKNOWN_CALLER or a status with a NUL byte is no UNKNOWN_CALLERID: both cells are
    refused, in the file's column order. An earlier record's UNKNOWN_CALLERID, left in the
    compiled core's buffer by a rejected record, must not count for a later one either."""
    result = parse(
        engine, header,
        {"CallerId": "", "CallStatus": "UNKNOWN_CALLERID", "CallDuration": "x"},  # rejected, status read
        {"CallerId": "", "CallStatus": "UNKNOWN_CALLER"},
        {"CallerId": "", "CallStatus": "UNKNOWN_CALLERID\x00"},
    )  # fmt: skip
    status_reason = "expected one of " + ", ".join(schemas.CALL_STATUSES)
    duration = f"expected a duration: {reasons.DURATION_FORMS}"
    nul = "contains a NUL byte (binary data is not allowed)"
    caller = [(line, "CallerId", "", REQUIRED) for line in (3, 4)]
    status = [
        (3, "CallStatus", "UNKNOWN_CALLER", status_reason),
        (4, "CallStatus", "UNKNOWN_CALLERID\x00", nul),
    ]
    first = [(2, "CallDuration", "x", duration)]
    if header[0] == "CallStatus":
        assert rejects(result) == [*first, status[0], caller[0], status[1], caller[1]]
    else:
        assert rejects(result) == [*first, caller[0], status[0], caller[1], status[1]]
    assert result.table.num_rows == 0


def test_rejects_stay_in_field_order_when_the_caller_id_is_decided_last(engine: str) -> None:
    """The compiled core decides an empty CallerId once it has read the status at the end of
    the record; the CallerId's reject still comes before those of the fields after it."""
    result = parse(
        engine, STATUS_LAST,
        {"CallerId": "", "CalledPhoneNumber": "", "CallDuration": "-5", "CallStatus": "ANSWER"},
        {"CallerId": "", "CalledPhoneNumber": "", "CallStatus": "UNKNOWN_CALLERID"},
    )  # fmt: skip
    assert [(r.line, r.column) for r in result.rejects] == [
        (2, "CallerId"), (2, "CalledPhoneNumber"), (2, "CallDuration"), (3, "CalledPhoneNumber"),
    ]  # fmt: skip


def test_other_required_columns_are_not_excused_by_the_status(engine: str) -> None:
    result = parse(engine, STATUS_LAST, {"CalledPhoneNumber": "", "CallStatus": "UNKNOWN_CALLERID"})
    assert rejects(result) == [(2, "CalledPhoneNumber", "", REQUIRED)]


def test_the_schema_says_when_the_caller_id_may_be_empty() -> None:
    caller = CC.column("CallerId")
    assert caller.required and caller.empty_when == ("CallStatus", "UNKNOWN_CALLERID")
    assert CC.arrow_schema().field("CallerId").nullable  # an accepted row may hold null
    assert [c.name for c in CC.columns if c.empty_when] == ["CallerId"]


def test_the_plan_names_the_status_slot_only_when_the_file_has_it() -> None:
    with_status = csvplan.typed_plan(STATUS_FIRST, CC, 44, None, 1)
    slot = with_status.slots[with_status.field_slot[STATUS_FIRST.index("CallerId")]]
    assert slot.empty_when == (0, b"UNKNOWN_CALLERID")
    without = csvplan.typed_plan(BASE, CC, 44, None, 1)
    assert without.slots[without.field_slot[BASE.index("CallerId")]].empty_when is None


# ------------------------------------------------------------------ both cores, every way in


def test_chunk_borders_and_threads_do_not_change_the_decision() -> None:
    """Records split across feeds, and blocks of a threaded parse (the rejects renumbered and
    merged), decide as one whole parse does."""
    rows = []
    statuses = ["UNKNOWN_CALLERID", "ANSWER", "", "bogus", "unknown_callerid"]
    for i in range(60_000):
        row = {"CallStatus": statuses[i % 5]}
        if i % 3 == 0:
            row["CallerId"] = ""
        if i % 7 == 0:
            row["CallDuration"] = "-1"
        rows.append(row)
    data = call_file(STATUS_MIDDLE, *rows)
    assert len(data) > 4 * 1024 * 1024  # more than one block of the threaded parse
    one = parse_bytes(data, "call_conversions", engine="cython", threads=1)
    two = parse_bytes(data, "call_conversions", engine="cython", threads=2)
    assert two.rejects == one.rejects and two.reject_keys == one.reject_keys
    assert two.table.equals(one.table)
    small = call_file(STATUS_LAST, *rows[:60])
    python = parse_bytes(small, "call_conversions", engine="python")
    core = compiled_core()
    for step in (1, 3, 17, 64):
        assert _fed_in_pieces(core, small, step) == _fed_in_pieces(refcore, small, len(small))
    cython = parse_bytes(small, "call_conversions", engine="cython")
    assert cython.rejects == python.rejects and cython.table.equals(python.table)
    # 20 rows without a CallerId; the 8 of them with UNKNOWN_CALLERID in either case pass
    assert sum(1 for r in python.rejects if r.column == "CallerId") == 12


def _fed_in_pieces(core: ModuleType, data: bytes, step: int) -> tuple[Any, ...]:
    status, fields, line, end, next_line = core.read_header(data, 44, True)
    assert status == csvplan.HeaderStatus.OK
    plan = csvplan.typed_plan(csvplan.decode_header(fields, line), CC, 44, None, line)
    parser = core.Parser(plan, next_line)
    body = data[end:]
    for i in range(0, len(body), step):
        parser.feed(body[i : i + step], False)
    parser.feed(b"", True)
    out = parser.finish()
    return out.rejects, [a.to_pylist() for a in out.arrays], out.lines.to_pylist(), out.reject_keys


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
callers = st.sampled_from(["", " ", "\u00a0", "NULL", "+15551234567", '"'])
statuses = st.sampled_from(
    ["UNKNOWN_CALLERID", "unknown_callerid", " Unknown_CallerId ", "UNKNOWN_CALLERI", "ANSWER", "", "NULL",
     "x\x00", "CANCEL"]
)  # fmt: skip
others = st.sampled_from(["185", "-1", "", "1:03"])
headers = st.permutations([*BASE, "CallStatus", "SaleAmount"]) | st.permutations(BASE)


@FAST
@given(header=headers, cells=st.lists(st.tuples(callers, statuses, others), max_size=6))
def test_both_cores_decide_alike_and_as_the_rule_says(
    header: list[str], cells: list[tuple[str, str, str]]
) -> None:
    rows = [{"CallerId": c, "CallStatus": s, "CallDuration": d} for c, s, d in cells]
    data = call_file(header, *rows)
    seen = []
    for engine in ("python", "cython"):
        r = parse_bytes(data, "call_conversions", engine=engine)  # type: ignore[arg-type]
        seen.append((r.table.to_pylist(), r.rejects, r.lines.to_pylist(), r.reject_keys))
    assert seen[0] == seen[1]
    refused = {(r.line, r.column) for r in seen[0][1]}
    for line, (caller, status, _duration) in enumerate(cells, 2):
        # NULL is kept as sent where a status column could excuse it, else it is missing
        empty = not caller.strip(" \u00a0") or (caller == "NULL" and "CallStatus" not in header)
        excused = "CallStatus" in header and status.strip().upper() == "UNKNOWN_CALLERID"
        assert ((line, "CallerId") in refused) == (empty and not excused), (caller, status)
