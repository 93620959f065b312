"""Google Ads' `Parameters:TimeZone=...` line above the header: the forms the export writes.

The layout gives the value as "<tz id or +-HHMM>"; offsets that are not whole hours (+0530
India, +0545 Nepal, -0930 Marquesas) were refused as 'not a whole hour', and a preamble that
Excel padded with commas to the table's width was read as the header.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from connectbatch.errors import ParseError
from connectbatch.parser.api import parse_bytes, parse_file
from connectbatch.parser.batches import parse_file_batches
from connectbatch.parser.options import ParseOptions

CallCsv = Callable[..., bytes]
WALL = "2026-12-01 14:05:09"  # no offset: a wall-clock time in the file's time zone


def event_utc(data: bytes, engine: str) -> dt.datetime:
    result = parse_bytes(data, engine=engine)  # type: ignore[arg-type]
    assert result.rejects == []
    value: dt.datetime = result.table.column("EventDate")[0].as_py()
    return value


@pytest.mark.parametrize(
    "zone, utc",
    [
        ("+0530", dt.datetime(2026, 12, 1, 8, 35, 9)),
        ("+05:30", dt.datetime(2026, 12, 1, 8, 35, 9)),
        ("+0545", dt.datetime(2026, 12, 1, 8, 20, 9)),
        ("-0930", dt.datetime(2026, 12, 1, 23, 35, 9)),
        ("-0500", dt.datetime(2026, 12, 1, 19, 5, 9)),
        ("+1400", dt.datetime(2026, 12, 1, 0, 5, 9)),
        ("-12:00", dt.datetime(2026, 12, 2, 2, 5, 9)),
        ("+0000", dt.datetime(2026, 12, 1, 14, 5, 9)),
        ("-00:00", dt.datetime(2026, 12, 1, 14, 5, 9)),
    ],
)
def test_a_preamble_utc_offset_places_times_at_the_right_instant(
    engine: str, call_csv: CallCsv, zone: str, utc: dt.datetime
) -> None:
    data = f"Parameters:TimeZone={zone}\n".encode() + call_csv({"EventDate": WALL})
    assert event_utc(data, engine) == utc.replace(tzinfo=dt.UTC)


def test_a_half_hour_offset_holds_in_a_threaded_and_a_batched_parse(
    call_csv: CallCsv, tmp_path: Path
) -> None:
    path = tmp_path / "calls.csv"
    path.write_bytes(b"Parameters:TimeZone=+0530\r\n" + call_csv(*[{"EventDate": WALL}] * 3000))
    want = dt.datetime(2026, 12, 1, 8, 35, 9, tzinfo=dt.UTC)
    threaded = parse_file(path, threads=4)
    batches = list(
        parse_file_batches(path, "call_conversions", options=ParseOptions(), batch_bytes=64 * 1024)
    )
    values = threaded.table.column("EventDate").to_pylist()
    values += [v for b in batches for v in b.parsed.table.column("EventDate").to_pylist()]
    assert set(values) == {want} and len(values) == 6000


@pytest.mark.parametrize(
    "zone, message",
    [
        ("+1500", "the file's TimeZone=+1500 is not a UTC offset from -12:00 to +14:00"),
        ("-1401", "the file's TimeZone=-1401 is not a UTC offset from -12:00 to +14:00"),
        # a date cell's own offset keeps to -12:00 too (a spec audit: the preamble took -13:30)
        ("-1330", "the file's TimeZone=-1330 is not a UTC offset from -12:00 to +14:00"),
        ("-12:01", "the file's TimeZone=-12:01 is not a UTC offset from -12:00 to +14:00"),
        ("+0560", "the file's TimeZone=+0560 is not a UTC offset from -12:00 to +14:00"),
        ("+5:30", "the file's preamble names an unknown time zone: TimeZone=+5:30"),
        ("+05300", "the file's preamble names an unknown time zone: TimeZone=+05300"),
        ("0530", "the file's preamble names an unknown time zone: TimeZone=0530"),
    ],
)
def test_a_malformed_or_impossible_offset_is_refused(
    engine: str, call_csv: CallCsv, zone: str, message: str
) -> None:
    data = f"Parameters:TimeZone={zone}\n".encode() + call_csv({"EventDate": WALL})
    with pytest.raises(ParseError) as raised:
        parse_bytes(data, engine=engine)  # type: ignore[arg-type]
    assert str(raised.value) == message


@pytest.mark.parametrize(
    "line, delimiter",
    [
        ("Parameters:TimeZone=America/New_York,,,,,,,,,,", ","),
        ('"Parameters:TimeZone=America/New_York",,,', ","),
        ("Parameters:TimeZone=America/New_York, , ,", ","),
        ("Parameters:TimeZone=America/New_York;;;;", ";"),
        ("Parameters:TimeZone=America/New_York\t\t", "\t"),
    ],
    ids=["commas", "quoted", "blank-cells", "semicolons", "tabs"],
)
def test_a_preamble_padded_with_empty_cells_is_still_a_preamble(
    engine: str, call_csv: CallCsv, line: str, delimiter: str
) -> None:
    """Excel pads a one-cell line with delimiters to the table's width when it saves CSV."""
    body = call_csv({"EventDate": WALL}, {"EventDate": WALL})
    data = f"{line}\r\n".encode() + body.replace(b",", delimiter.encode())
    result = parse_bytes(data, engine=engine, delimiter=delimiter)  # type: ignore[arg-type]
    assert (result.preamble, result.rejects, result.lines.to_pylist()) == (
        {"TimeZone": "America/New_York"},
        [],
        [3, 4],
    )
    # 14:05:09 in New York (EST, -05:00) is 19:05:09Z
    assert set(result.table.column("EventDate").to_pylist()) == {
        dt.datetime(2026, 12, 1, 19, 5, 9, tzinfo=dt.UTC)
    }


def test_a_first_line_with_more_than_the_preamble_is_read_as_the_header(
    engine: str, call_csv: CallCsv
) -> None:
    data = b"Parameters:TimeZone=America/New_York,CampaignId,,\n" + call_csv({})
    with pytest.raises(ParseError, match=r"^line 1: the header lacks required"):
        parse_bytes(data, engine=engine)  # type: ignore[arg-type]


def test_a_padded_sep_line_naming_another_delimiter_says_which_to_set(engine: str, call_csv: CallCsv) -> None:
    data = b"sep=;,,,,\n" + call_csv({})
    with pytest.raises(ParseError, match=r"^line 1: .*'sep=;'.*set the connection's delimiter to ';'$"):
        parse_bytes(data, engine=engine)  # type: ignore[arg-type]
