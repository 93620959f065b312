"""One test per parser rule of the call-conversion spec (issue 3), run on both cores."""

from __future__ import annotations

import codecs
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from connectbatch import schemas
from connectbatch.errors import ConfigurationError, ParseError
from connectbatch.parser.api import ParseResult, parse_bytes
from connectbatch.parser.plan import _localise

CC = "call_conversions"


class CallCsv(Protocol):  # the conftest builder
    def __call__(self, *rows: Mapping[str, str], drop: Sequence[str] = ...) -> bytes: ...


class Calls(Protocol):  # a file built from rows, parsed on the test's engine
    def __call__(self, *rows: Mapping[str, str], drop: Sequence[str] = ..., **kw: Any) -> ParseResult: ...


def parse(data: bytes, engine: str, data_type: str | None = CC, **kw: Any) -> ParseResult:
    return parse_bytes(data, data_type, engine=engine, **kw)  # type: ignore[arg-type]


@pytest.fixture
def calls(engine: str, call_csv: CallCsv) -> Calls:
    def run(*rows: Mapping[str, str], drop: Sequence[str] = (), **kw: Any) -> ParseResult:
        return parse(call_csv(*rows, drop=drop), engine, **kw)

    return run


def col(result: ParseResult, name: str) -> list[Any]:
    values: list[Any] = result.table.column(name).to_pylist()
    return values


def where(result: ParseResult) -> list[tuple[int, str | None, str | None]]:
    return [(r.line, r.column, r.value) for r in result.rejects]


def at(hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2026, 3, 1, hour, minute, second, micro, tzinfo=UTC)


# ------------------------------------------------------------------ RFC 4180 tokenizing


def test_quoted_fields_keep_delimiters_and_newlines(engine: str) -> None:
    result = parse(b'a,b\n"x, y","one\ntwo"\n', engine, None)
    assert result.table.to_pylist() == [{"a": "x, y", "b": "one\ntwo"}]


def test_doubled_quotes_inside_quotes_become_one_quote(engine: str) -> None:
    assert parse(b'a\n"say ""hi"""\n', engine, None).table.to_pylist() == [{"a": 'say "hi"'}]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_every_line_ending_ends_a_record(engine: str, eol: bytes) -> None:
    result = parse(eol.join([b"a,b", b"1,2", b"3,4", b""]), engine, None)
    assert result.table.to_pylist() == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]
    assert result.lines.to_pylist() == [2, 3]


def test_mixed_line_endings_in_one_file(engine: str) -> None:
    assert col(parse(b"a\r\n1\n2\r3\r\n", engine, None), "a") == ["1", "2", "3"]


def test_last_line_without_newline_is_kept(engine: str) -> None:
    assert col(parse(b"a,b\n1,2\n3,4", engine, None), "b") == ["2", "4"]


def test_blank_lines_are_skipped_but_still_counted(engine: str) -> None:
    result = parse(b"a,b\n\n1,2\r\n\r\n\n3,4\n\n", engine, None)
    assert result.table.to_pylist() == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]
    assert (result.lines.to_pylist(), result.rejects) == ([3, 6], [])


def test_reject_line_is_where_the_record_starts_after_embedded_newlines(calls: Calls) -> None:
    result = calls({"CallProvider": "Big\nMulti\r\nLine"}, {"CampaignId": "x"}, {"CallerId": "a\nb"})
    assert result.lines.to_pylist() == [2, 6]
    assert where(result) == [(5, "CampaignId", "x")]


def test_repeated_reject_kinds_keep_their_own_column_reason_and_value(engine: str, calls: Calls) -> None:
    # The parse keeps one (column, sentence) per (field, code, extra): rejects of the same
    # kind in other fields, or with another field count, must not borrow each other's.
    result = parse(b"a,b\n1,2,3\n4\n5,6\n7,8,9,10\n1,2,3\n", engine, None)
    assert [(r.line, r.column, r.reason) for r in result.rejects] == [
        (2, None, "expected 2 fields, saw 3; a value holding a comma must be in double quotes"),
        (3, None, "expected 2 fields, saw 1"),
        (5, None, "expected 2 fields, saw 4; a value holding a comma must be in double quotes"),
        (6, None, "expected 2 fields, saw 3; a value holding a comma must be in double quotes"),
    ]
    typed = calls({"CallDuration": "x"}, {"TalkDuration": "y"}, {"CallDuration": "-1", "TalkDuration": "z"})
    assert [(r.line, r.column, r.value) for r in typed.rejects] == [
        (2, "CallDuration", "x"), (3, "TalkDuration", "y"),
        (4, "CallDuration", "-1"), (4, "TalkDuration", "z"),
    ]  # fmt: skip
    assert typed.rejects[0].reason == typed.rejects[1].reason != typed.rejects[2].reason


def test_text_after_a_closing_quote_rejects_the_record(engine: str) -> None:
    result = parse(b'a,b\n"x"y,2\n3,4\n', engine, None)
    assert (col(result, "a"), where(result)) == (["3"], [(2, "a", '"x"y')])
    assert "must be doubled" in result.rejects[0].reason


def test_unterminated_quote_rejects_the_record_from_its_start(engine: str) -> None:
    result = parse(b'a,b\n1,2\n3,"never closed\n4,5\n', engine, None)
    assert col(result, "a") == ["1"]
    assert [(r.line, r.column) for r in result.rejects] == [(3, "b")]
    assert "never closed" in result.rejects[0].reason


@pytest.mark.parametrize("delimiter", ["|", ";", "\t"])
def test_other_delimiters(engine: str, delimiter: str) -> None:
    data = "a_b\n1_'2_3'\n".replace("_", delimiter).replace("'", '"').encode()
    result = parse(data, engine, None, delimiter=delimiter)
    assert result.table.to_pylist() == [{"a": "1", "b": f"2{delimiter}3"}]


def test_file_over_one_mebibyte_with_a_short_header_parses(engine: str) -> None:
    assert parse(b"a,b\n" + b"1,2\n" * 270_000, engine, None).table.num_rows == 270_000


# ------------------------------------------------------------------ encodings


def test_utf8_bom_is_not_part_of_the_first_column_name(engine: str, call_csv: CallCsv) -> None:
    result = parse(codecs.BOM_UTF8 + call_csv({}), engine)
    assert (result.header[0], col(result, "CampaignId")) == ("CampaignId", [1234])


@pytest.mark.parametrize(
    "bom, codec", [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")]
)
def test_utf16_with_bom_is_detected(engine: str, call_csv: CallCsv, bom: bytes, codec: str) -> None:
    text = call_csv({"CallProvider": "Société Générale ☎"}).decode()
    result = parse(bom + text.encode(codec), engine)
    assert (result.encoding, col(result, "CallProvider")) == (codec, ["Société Générale ☎"])


@pytest.mark.parametrize("encoding, text", [("latin-1", "José Müller"), ("cp1252", "€5 – José")])
def test_single_byte_encodings_are_read_when_configured(
    engine: str, call_csv: CallCsv, encoding: str, text: str
) -> None:
    data = call_csv({"CallProvider": text}).decode().encode(encoding)
    assert col(parse(data, engine, encoding=encoding), "CallProvider") == [text]


# (cp1252's undefined 0x81 no longer serves: it is read as windows-1252, where it is U+0081)
@pytest.mark.parametrize("encoding, bad", [(None, b"B\xffD"), ("ascii", b"B\x81D")])
def test_invalid_bytes_reject_only_that_row_with_its_line(
    engine: str, call_csv: CallCsv, encoding: str | None, bad: bytes
) -> None:
    data = call_csv({"CallSessionId": "a"}, {"CallSessionId": "BAD"}, {"CallSessionId": "c"})
    result = parse(data.replace(b"BAD", bad), engine, encoding=encoding)
    assert col(result, "CallSessionId") == ["a", "c"]
    assert [(r.line, r.column) for r in result.rejects] == [(3, "CallSessionId")]
    assert f"not valid {encoding or 'utf-8'} text" in result.rejects[0].reason


# ------------------------------------------------------------------ header mapping


def test_header_matches_case_insensitively_after_trimming_in_any_order(engine: str) -> None:
    header = " talkduration ,CALLDURATION,calledphonenumber,CallerID,callsessionid,CALLPROVIDER,"
    header += "actiontrackerid,  EventDate,mediaid,campaignid\n"
    row = parse(f"{header}60,63,+1800,+1555,cs-9,Invoca,7,2026-03-01,5,4\n".encode(), engine)
    got = row.table.to_pylist()[0]
    assert (got["CampaignId"], got["MediaId"], got["ActionTrackerId"]) == (4, 5, 7)
    assert (got["CallDuration"], got["TalkDuration"], got["CallSessionId"]) == (63, 60, "cs-9")


def test_column_map_renames_partner_headers_first(calls: Calls) -> None:
    rows = {"Program": "42", "Caller": "+1555"}
    result = calls(
        rows,
        drop=["CampaignId", "CallerId"],
        column_map={"program": "CampaignId", "Caller ": "callerid"},
    )
    assert (col(result, "CampaignId"), col(result, "CallerId")) == ([42], ["+1555"])


def test_a_reject_in_a_mapped_column_names_the_files_own_header(calls: Calls) -> None:
    """The results file says "EventDate: ..." where the partner's file says "Call Date": the
    reason names their column too, so they know which cell to fix."""
    result = calls(
        {"Call Date": "12/01/2026 09:05 AM"}, drop=["EventDate"], column_map={"Call Date": "EventDate"}
    )
    [reject] = result.rejects
    assert reject.column == "EventDate"
    assert reject.reason.endswith('(the file\'s column "Call Date")'), reject.reason
    unmapped = calls({"CampaignId": "x"})
    assert "the file's column" not in unmapped.rejects[0].reason


def test_column_map_to_a_column_the_schema_lacks_is_a_configuration_error(calls: Calls) -> None:
    with pytest.raises(ConfigurationError, match="'Nope', which is not a column"):
        calls({}, column_map={"CallerId": "Nope"})


def test_missing_required_columns_are_all_named_in_one_error(calls: Calls) -> None:
    with pytest.raises(ParseError) as err:
        calls({"Campaign_Id": "1"}, drop=["CampaignId", "CallerId", "TalkDuration"])
    message = str(err.value)
    assert all(name in message for name in ("CampaignId", "CallerId", "TalkDuration"))
    assert "'Campaign_Id'" in message  # the close match is suggested


def test_duplicate_columns_make_the_file_unusable(engine: str, call_csv: CallCsv) -> None:
    data = call_csv({"x": "1"}).replace(b",x\n", b",callprovider \n", 1)
    with pytest.raises(ParseError, match="twice: CallProvider"):
        parse(data, engine)


def test_unknown_columns_are_listed_and_not_fatal(calls: Calls) -> None:
    result = calls({"Foo": "1", "bar baz": "2"})
    assert result.unknown_columns == ["Foo", "bar baz"]
    assert result.table.num_rows == 1 and "Foo" not in result.table.column_names


# ------------------------------------------------------------------ typed values


def test_output_has_every_schema_column_in_schema_order(calls: Calls) -> None:
    assert calls({}).table.schema == schemas.get(CC).arrow_schema()


def test_integer_ids_parse_and_ad_id_may_be_empty(calls: Calls) -> None:
    result = calls({"AdId": "555"}, {"AdId": "", "CampaignId": "+7"})
    assert (col(result, "AdId"), col(result, "CampaignId")) == ([555, None], [1234, 7])


@pytest.mark.parametrize("column", ["CampaignId", "MediaId", "AdId", "ActionTrackerId"])
def test_a_negative_identifier_is_rejected(calls: Calls, column: str) -> None:
    # Found with a partner's file: CampaignId -1 and MediaId -98765 loaded as a pending action
    # credited to a campaign and a partner no one has.
    result = calls({column: "-1"})
    assert where(result) == [(2, column, "-1")]
    assert "negative" in result.rejects[0].reason


@pytest.mark.parametrize("text", ["１２", "1_000", "1,000", "12.0", "abc", "٣", "9223372036854775808"])
def test_integers_are_plain_ascii_digits(calls: Calls, text: str) -> None:
    assert where(calls({"AdId": text})) == [(2, "AdId", text)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-03-01T14:05:09Z", at(14, 5, 9)),
        ("2026-03-01T16:05:09+02:00", at(14, 5, 9)),
        ("2026-03-01T09:05:09-05:00", at(14, 5, 9)),
        ("2026-03-01T14:05:09.25Z", at(14, 5, 9, 250_000)),
        ("2026-03-01 14:05:09", at(14, 5, 9)),
        ("2026-03-01", at(0)),
        # ISO 8601 basic format
        ("20260301T140509Z", at(14, 5, 9)),
        ("20260301T150509+0100", at(14, 5, 9)),
        ("20260301T090509-05", at(14, 5, 9)),
        ("20260301T140509.25Z", at(14, 5, 9, 250_000)),
        ("20260301t140509,5z", at(14, 5, 9, 500_000)),
        ("20260301T1405Z", at(14, 5)),
        ("20260301T140509", at(14, 5, 9)),
        ("20260301", at(0)),
        # as BigQuery writes a TIMESTAMP (data-types audit: refused, where "...Z" was read)
        ("2026-03-01 14:05:09 UTC", at(14, 5, 9)),
        ("2026-03-01 14:05:09.25 utc", at(14, 5, 9, 250_000)),
        ("2026-03-01T14:05UTC", at(14, 5)),
    ],
)
def test_event_date_iso_8601_forms(calls: Calls, text: str, expected: datetime) -> None:
    assert col(calls({"EventDate": text}), "EventDate") == [expected]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-03-01 09:05:09", at(14, 5, 9)),  # EST, UTC-5
        ("2026-03-01", at(5)),  # midnight in New York
        ("2026-03-01T09:05:09Z", at(9, 5, 9)),  # an explicit offset wins
        ("2026-07-01T10:00:00", datetime(2026, 7, 1, 14, tzinfo=UTC)),  # EDT, UTC-4
        ("20260301T090509", at(14, 5, 9)),  # basic format, no offset
        # zoneinfo's fold=0 rule: a time in the spring-forward gap is read with the offset
        # before the transition (EST), never as the last microsecond before the gap
        ("2026-03-08 02:30:00", datetime(2026, 3, 8, 7, 30, tzinfo=UTC)),
        ("2026-03-08 02:00:00", datetime(2026, 3, 8, 7, tzinfo=UTC)),
        ("2026-03-08 03:00:00", datetime(2026, 3, 8, 7, tzinfo=UTC)),  # EDT again
        # the repeated hour in autumn: the first occurrence (EDT), deterministically
        ("2026-11-01 01:30:00", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
        ("2026-11-01 02:30:00", datetime(2026, 11, 1, 7, 30, tzinfo=UTC)),  # EST after it
    ],
)
def test_event_date_without_offset_is_in_the_connection_time_zone(
    calls: Calls, text: str, expected: datetime
) -> None:
    result = calls({"EventDate": text}, timezone="America/New_York")
    assert col(result, "EventDate") == [expected]


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("00010101", "Australia/Lord_Howe"),  # year 0 in UTC (found by hypothesis: a crash)
        ("0001-01-01 05:00", "Asia/Tokyo"),
        ("9999-12-31 23:30", "America/New_York"),  # year 10000 in UTC
    ],
)
def test_a_local_time_moved_past_years_1_to_9999_is_rejected(calls: Calls, text: str, zone: str) -> None:
    """The connection's zone is applied after the cores' range check: such a row used to
    come out as a timestamp no Python datetime can hold (OverflowError downstream)."""
    result = calls({"EventDate": text}, timezone=zone)
    assert result.table.num_rows == 0
    [reject] = result.rejects
    assert reject.column == "EventDate" and "before year 1 or after 9999 in UTC" in reject.reason
    assert zone in reject.reason


@pytest.mark.parametrize(
    "text",
    [
        "2026-02-30",
        "2026-13-01",
        "2026-03-01T24:00Z",
        "03/01/2026",
        "today",
        "20260230",
        "20260301 140509",  # basic date and time need a T between them
        "2026-03-01T140509",  # extended date with basic time
        "20260301T14050",
        "20260301T240000Z",
        # Real local times whose UTC instant falls outside years 1-9999 (found by hypothesis).
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+00:01",
        # Offsets no place uses (-12:00 to +14:00 are): "+23:59" moved the call by a day.
        "2026-12-05T14:05:09+23:59",
        "2026-12-05T14:05:09+14:01",
        "2026-12-05T14:05:09-1201",
        "2026-12-05T14:05:09+15",
        "2026-03-01 UTC",  # a zone needs a time
        "2026-03-01 14:05:09 UTC+1",
        "2026-03-01 14:05:09 UT",
    ],
)
def test_event_date_that_is_not_a_real_iso_date_is_rejected(calls: Calls, text: str) -> None:
    result = calls({"EventDate": text})
    assert where(result) == [(2, "EventDate", text)]
    assert "ISO 8601" in result.rejects[0].reason or "not a real date" in result.rejects[0].reason


def test_event_date_at_the_widest_offsets_in_use_is_read(calls: Calls) -> None:
    result = calls({"EventDate": "2026-12-05T14:00:00+14:00"}, {"EventDate": "2026-12-05T14:00:00-12:00"})
    assert result.rejects == []
    assert col(result, "EventDate") == [
        datetime(2026, 12, 5, 0, 0, tzinfo=UTC),
        datetime(2026, 12, 6, 2, 0, tzinfo=UTC),
    ]


@pytest.mark.parametrize("text", ["63", "63.0", " 63 "])
def test_durations_accept_whole_seconds(calls: Calls, text: str) -> None:
    assert col(calls({"CallDuration": text}), "CallDuration") == [63]


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("1:03", 63),  # M:SS
        ("01:03", 63),  # MM:SS
        ("59:59", 3599),
        ("0:01:03", 63),  # H:MM:SS
        ("00:01:03", 63),  # HH:MM:SS
        ("26:00:00", 93_600),  # hours past 24
        ("123:59:59", 446_399),
        ("1:03.5", 64),  # a fraction on the seconds of a clock form
        ("-0:00", 0),
    ],
)
def test_durations_accept_clock_forms(calls: Calls, text: str, seconds: int) -> None:
    for column in ("CallDuration", "TalkDuration", "IvrDuration"):
        result = calls({column: text})
        assert where(result) == []
        assert col(result, column) == [seconds]


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("63.5", 64),  # half rounds away from zero, not to even (banker's would give 64 too)
        ("62.5", 63),  # banker's would give 62
        ("0.5", 1),
        ("63.49", 63),
        ("63.4999", 63),  # only the first fractional digit decides
        ("63.", 63),
        ("9223372036854775807.4", 9223372036854775807),
    ],
)
def test_decimal_durations_round_half_away_from_zero(calls: Calls, text: str, seconds: int) -> None:
    assert col(calls({"CallDuration": text}), "CallDuration") == [seconds]


@pytest.mark.parametrize(
    "text, why",
    [
        ("abc", "expected a duration"),
        ("1e3", "expected a duration"),
        ("1:2", "expected a duration"),
        ("1:23:45:67", "expected a duration"),
        ("1::03", "expected a duration"),
        ("-5", "negative"),
        ("-0.4", "negative"),  # negative even though it rounds to 0
        ("-0:01:00", "negative"),
        ("1:60", "0-59"),
        ("1:60:00", "0-59"),
        ("1:00:60", "0-59"),
        ("9223372036854775807.5", "too large"),
        ("2562047788015215:30:08", "too large"),
        ("153722867280912931:00", "too large"),
    ],
)
def test_durations_reject_what_is_not_a_duration(calls: Calls, text: str, why: str) -> None:
    for column in ("CallDuration", "TalkDuration", "IvrDuration"):
        result = calls({column: text})
        assert where(result) == [(2, column, text)]
        assert why in result.rejects[0].reason


@pytest.mark.parametrize("text, seconds", [("60:00", 3600), ("100:00", 6000), ("123:45", 7425)])
def test_a_long_call_as_minutes_and_seconds_is_read(calls: Calls, text: str, seconds: int) -> None:
    # M:SS took at most 59 minutes: "100:00", a 100-minute call as a partner's export shows it,
    # was rejected while "1:40:00" was read
    assert col(calls({"CallDuration": text}), "CallDuration") == [seconds]


def test_duration_reject_names_the_accepted_forms(calls: Calls) -> None:
    reason = calls({"CallDuration": "abc"}).rejects[0].reason
    assert all(form in reason for form in ("63.5", "M:SS", "H:MM:SS"))


@pytest.mark.parametrize(
    "text, expected", [("12.5", "12.50"), ("1,234.50", "1234.50"), ("$12.50", "12.50"), ("", None)]
)
def test_sale_amount_accepts_common_currency_forms(calls: Calls, text: str, expected: str | None) -> None:
    amount = Decimal(expected) if expected else None
    assert col(calls({"SaleAmount": text}), "SaleAmount") == [amount]


@pytest.mark.parametrize("text", ["12.34.56", "1,23.4", "12.345", "12 EUR"])
def test_sale_amount_rejects_malformed_amounts(calls: Calls, text: str) -> None:
    assert where(calls({"SaleAmount": text})) == [(2, "SaleAmount", text)]


def test_call_status_is_case_insensitive_and_defaults_to_answer(calls: Calls) -> None:
    assert col(calls({"CallStatus": "cancel"}, {"CallStatus": ""}), "CallStatus") == [
        "CANCEL",
        "ANSWER",
    ]
    assert col(calls({}), "CallStatus") == ["ANSWER"]  # column absent


def test_unknown_call_status_is_rejected_with_the_allowed_values(calls: Calls) -> None:
    result = calls({"CallStatus": "HUNG_UP"})
    assert where(result) == [(2, "CallStatus", "HUNG_UP")]
    assert "NO_TRANSFER_ATTEMPT" in result.rejects[0].reason


def test_countries_are_case_insensitive_and_default_to_us(calls: Calls) -> None:
    result = calls({"CallerPhoneNumberCountry": "gb"}, {"CallerPhoneNumberCountry": ""})
    assert col(result, "CallerPhoneNumberCountry") == ["GB", "US"]
    assert col(result, "CalledPhoneNumberCountry") == ["US", "US"]  # column absent


def test_a_null_country_or_status_takes_its_default(calls: Calls) -> None:
    """The spec: "When NULL, defaults to US". A SQL export's literal NULL was rejected as
    not a country code, and enough of them held the whole file for review."""
    result = calls(
        {"CallerPhoneNumberCountry": "NULL", "CalledPhoneNumberCountry": " null ", "CallStatus": "Null"},
        {"CallerPhoneNumberCountry": "NULLS", "CalledPhoneNumberCountry": "gb"},
    )
    assert col(result, "CallerPhoneNumberCountry")[:1] == ["US"]
    assert col(result, "CalledPhoneNumberCountry")[:1] == ["US"]
    assert col(result, "CallStatus")[:1] == ["ANSWER"]
    assert where(result) == [(3, "CallerPhoneNumberCountry", "NULLS")]  # only the word NULL


def test_null_is_an_empty_cell_of_any_other_column_too(calls: Calls) -> None:
    """A database export's NULL: it was a rejected amount or AdId (the whole row refused), and
    in a required number a "not a whole number" instead of "required" (found by a partner)."""
    result = calls(
        {"SaleAmount": "NULL", "AdId": "null", "City": "Null", "SubId1": " NULL "},
        {"CampaignId": "NULL"},
    )
    assert [(r.line, r.column, r.value) for r in result.rejects] == [(3, "CampaignId", "NULL")]
    assert "required" in result.rejects[0].reason  # not "expected a whole number"
    assert [col(result, c) for c in ("SaleAmount", "AdId", "City", "SubId1")] == [[None]] * 4


def test_null_in_the_caller_id_stays_what_was_sent(calls: Calls) -> None:
    # a caller ID the vendor could not read (CallStatus UNKNOWN_CALLERID) is still a call
    result = calls({"CallerId": "NULL", "CallStatus": "ANSWER"})
    assert result.rejects == [] and col(result, "CallerId") == ["NULL"]


@pytest.mark.parametrize("column", ["CallSessionId", "CallProvider", "CalledPhoneNumber"])
def test_null_in_another_required_text_column_is_a_missing_value(calls: Calls, column: str) -> None:
    """Found by a spec audit: a CallSessionId of NULL (a database export's missing value) was
    loaded as the key "NULL", and the next call without one was held as already loaded."""
    result = calls({column: "NULL"}, {column: " null "}, {})
    assert where(result) == [(2, column, "NULL"), (3, column, " null ")]
    assert all("required" in r.reason for r in result.rejects)


@pytest.mark.parametrize("text", ["UK", "uſ", "USA", "ZZ", "ｕｓ"])
def test_countries_must_be_real_iso_codes_compared_in_ascii(calls: Calls, text: str) -> None:
    result = calls({"CalledPhoneNumberCountry": text})
    assert where(result) == [(2, "CalledPhoneNumberCountry", text)]
    assert ("(use GB)" in result.rejects[0].reason) == (text == "UK")


def test_zip_keeps_leading_zeros_and_empty_strings_are_null(calls: Calls) -> None:
    result = calls({"Zip": "02134", "SubId1": ""})
    assert (col(result, "Zip"), col(result, "SubId1")) == (["02134"], [None])


@pytest.mark.parametrize("column", ["CallProvider", "CallSessionId", "CallerId", "CalledPhoneNumber"])
def test_required_strings_must_not_be_empty(calls: Calls, column: str) -> None:
    result = calls({column: ""}, {column: "  "}, {})
    assert [(r.line, r.column) for r in result.rejects] == [(2, column), (3, column)]
    assert result.lines.to_pylist() == [4]


def test_each_bad_field_is_reported_but_the_record_is_rejected_once(calls: Calls) -> None:
    bad = {"CampaignId": "x", "CallDuration": "-1", "CallerPhoneNumberCountry": "UK"}
    result = calls({"CallSessionId": "a"}, bad, {"CallSessionId": "c"})
    assert [r.column for r in result.rejects] == [*bad]
    assert {r.line for r in result.rejects} == {3}
    assert (result.rows_rejected, col(result, "CallSessionId")) == (1, ["a", "c"])


def test_wrong_field_count_says_how_many_were_expected_and_seen(engine: str, call_csv: CallCsv) -> None:
    head, good = call_csv({"CallSessionId": "c"}).split(b"\n")[:2]
    result = parse(b"\n".join([head, good, b"1,2,3", good]), engine)
    assert [(r.line, r.column, r.reason) for r in result.rejects] == [(3, None, "expected 10 fields, saw 3")]
    assert result.lines.to_pylist() == [2, 4]


def test_reject_shows_the_offending_value_cut_to_a_readable_length(calls: Calls) -> None:
    result = calls({"CallSessionId": "a"}, {"CampaignId": "9" * 50 + "x" * 500})
    assert len(result.rejects) == 1 and result.rejects[0].line == 3
    assert result.rejects[0].value == "9" * 50 + "x" * 70 + "…"


# ------------------------------------------------------------------ raw mode, containers, types


def test_raw_mode_keeps_the_header_names_all_strings_and_empty_cells(engine: str) -> None:
    result = parse(b" Amount ,CampaignId,x\n$1.5,abc,\n", engine, None)
    assert result.table.to_pylist() == [{" Amount ": "$1.5", "CampaignId": "abc", "x": ""}]
    assert all(str(t) == "string" for t in result.table.schema.types)


@pytest.mark.parametrize("data", [b"", b"\n\r\n\r"], ids=["zero-bytes", "blank-lines"])
def test_empty_file_is_a_parse_error(engine: str, data: bytes) -> None:
    with pytest.raises(ParseError, match="empty"):
        parse(data, engine)


@pytest.mark.parametrize("key", sorted(schemas.REGISTRY))
def test_every_data_type_template_parses_without_rejects(engine: str, key: str) -> None:
    result = parse(schemas.get(key).template_csv().encode(), engine, key)
    assert (result.table.num_rows, result.rejects, result.unknown_columns) == (1, [], [])


def test_a_record_rejected_for_another_field_keeps_its_key_for_the_results_file(
    calls: Calls,
) -> None:
    result = calls({"CallDuration": "abc"}, {"CallSessionId": ""})
    # line 2: CallDuration is bad but the session id is readable; line 3: the key itself is bad
    assert [r.line for r in result.rejects] == [2, 3]
    assert list(result.reject_keys) == [2]
    assert result.reject_keys[2]


def test_a_record_refused_for_its_quoting_keeps_the_key_read_before_the_fault(
    engine: str, call_csv: CallCsv
) -> None:
    """Found by the partner-files audit: a stray quote in UserAgent, after CallSessionId,
    left the results line of that record with no CallSessionId, though the key was read
    fine; a fault before the key (CallProvider) still names none, and a qualifier after the
    fault is not read."""
    data = call_csv(
        {"UserAgent": "@1@", "VendorEventId": "ev-1"},
        {"CallProvider": "@2@", "VendorEventId": "ev-2"},
        {"UserAgent": "@3@"},
    )  # the faults put in after the writer, which would quote them right
    for mark, fault in ((b"@1@", b'"quoted" agent'), (b"@2@", b'"Inv"oca'), (b"@3@", b'"unclosed')):
        data = data.replace(mark, fault)
    result = parse(data, engine)
    assert [(r.line, r.column) for r in result.rejects] == [
        (2, "UserAgent"),
        (3, "CallProvider"),
        (4, "UserAgent"),
    ]
    assert set(result.reject_keys) == {2, 4} and result.reject_qualifiers == {}


@pytest.mark.parametrize(
    "zone, day",
    [
        ("America/New_York", "2026-03-08"),  # spring forward 02:00 -> 03:00
        ("America/New_York", "2026-11-01"),  # fall back 02:00 -> 01:00
        ("Australia/Lord_Howe", "2026-04-05"),  # a 30-minute shift back
        ("Australia/Lord_Howe", "2026-10-04"),  # a 30-minute shift forward
        ("Europe/London", "2026-03-29"),
    ],
)
def test_local_times_across_dst_transitions_follow_zoneinfo(zone: str, day: str) -> None:
    """Every quarter hour of a transition day, gap and repeated hour included, lands where
    zoneinfo puts the naive wall time with fold=0."""
    start = datetime.fromisoformat(day)
    walls = [start + timedelta(minutes=15 * i) for i in range(96)]
    arr = pa.array(walls, pa.timestamp("us")).cast(pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    got = _localise(arr, pa.array([True] * len(walls)), zone).to_pylist()
    want = [w.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC) for w in walls]
    assert got == want


def _respelled(data: bytes, delimiter: str, quote_header: bool = False) -> bytes:
    """The conftest's comma file written with another delimiter (no field holds one)."""
    rows = [line.split(",") for line in data.decode().splitlines()]
    if quote_header:
        rows[0] = [f'"{name}"' for name in rows[0]]
    return "\n".join(delimiter.join(row) for row in rows).encode() + b"\n"


@pytest.mark.parametrize(
    "delimiter, hint",
    [
        (";", "the header looks ';'-separated: set the connection's delimiter to ';'"),
        ("|", "the header looks '|'-separated: set the connection's delimiter to '|'"),
        ("\t", "the header looks tab-separated: set the connection's delimiter to a tab"),
    ],
)
def test_wrong_delimiter_says_which_delimiter_the_header_uses(
    engine: str, call_csv: CallCsv, delimiter: str, hint: str
) -> None:
    data = _respelled(call_csv({"CallSessionId": "c"}), delimiter)
    with pytest.raises(ParseError) as err:
        parse(data, engine)
    message = str(err.value)
    assert "lacks required call conversions columns" in message
    assert message.count(hint) == 1  # once per header, not once per missing column
    assert col(parse(data, engine, delimiter=delimiter), "CallSessionId") == ["c"]


def test_wrong_delimiter_hint_for_a_quoted_header(engine: str, call_csv: CallCsv) -> None:
    data = _respelled(call_csv({"CallSessionId": "c"}), ";", quote_header=True)
    with pytest.raises(ParseError, match="set the connection's delimiter to ';'"):
        parse(data, engine)


def test_wrong_delimiter_hint_uses_the_column_map(engine: str, call_csv: CallCsv) -> None:
    data = _respelled(call_csv({"CallSessionId": "c"}), ";").replace(b"CampaignId", b"Campaign", 1)
    with pytest.raises(ParseError, match="delimiter to ';'"):
        parse(data, engine, column_map={"Campaign": "CampaignId"})
    with pytest.raises(ParseError) as err:  # without the map it would still lack CampaignId
        parse(data, engine)
    assert "delimiter" not in str(err.value)


def test_no_delimiter_hint_when_columns_are_really_missing(engine: str, call_csv: CallCsv) -> None:
    with pytest.raises(ParseError) as err:
        parse(call_csv({"CallSessionId": "c"}, drop=["CampaignId"]), engine)
    assert "delimiter" not in str(err.value)


WIDE = 400_000  # names in the header of a wrong or transposed export (issue 13)


def _wide_header(delimiter: str = ",") -> bytes:
    """400,000 unknown names, one of them a near-miss for CampaignId, and no required column."""
    names = [f"Metric{i}" for i in range(WIDE)]
    names[WIDE - 2] = "Campaign_Id"
    return (delimiter.join(names) + "\n1\n").encode()


def test_a_header_of_400000_names_names_the_missing_columns_and_the_close_match(engine: str) -> None:
    """The suggestions are computed once per header over a compiled prefilter (this took 13 s
    with difflib run over every name per missing column); the message stays short."""
    with pytest.raises(ParseError) as err:
        parse(_wide_header(), engine)
    message = str(err.value)
    assert message.startswith("line 1: the header lacks required call conversions columns: ")
    required = schemas.get(CC).required_columns
    assert all(name in message for name in required)
    assert "CampaignId (the file has 'Campaign_Id'; map it or rename it)" in message
    assert message.count("the file has") == 1
    assert "Metric" not in message
    assert len(message) < 400


def test_a_wide_header_gives_the_same_error_on_both_cores() -> None:
    messages = set()
    for engine in ("python", "cython"):
        with pytest.raises(ParseError) as err:
            parse(_wide_header(), engine)
        messages.add(str(err.value))
    assert len(messages) == 1


def test_a_wide_header_with_the_wrong_delimiter_quotes_its_one_name_cut_short(engine: str) -> None:
    """Read with commas, a ';' header is one 3 MB name: the message does not repeat it."""
    with pytest.raises(ParseError) as err:
        parse(_wide_header(";"), engine)
    message = str(err.value)
    assert "lacks required call conversions columns" in message
    assert len(message) < 1000


def test_the_missing_columns_message_names_at_most_ten_columns() -> None:
    from connectbatch.parser import header_hints

    missing = [f"Col{i}" for i in range(15)]
    spellings = {"col3_": "col3_", "x" * 500 + "col4": "x" * 500 + "Col4"}
    message = header_hints.missing_message(
        missing, list(spellings), spellings.__getitem__, schemas.get(CC), 1
    )
    assert "Col9" in message and "Col10" not in message
    assert message.endswith(" and 5 more")
    assert "Col3 (the file has 'col3_'; map it or rename it)" in message
    assert "x" * 200 not in message


def test_the_close_match_is_the_one_difflib_picks() -> None:
    """The compiled prefilter only narrows the names: difflib's choice and cutoff still decide."""
    import difflib

    from connectbatch.parser import header_hints

    choices = [f"campaign{i}" for i in range(200)] + ["campaignid_", "campaign_id", "mediaid"]
    for word in ("campaignid", "mediaid", "callerid", "campaign"):
        expected = difflib.get_close_matches(word, choices, 1, header_hints.CLOSE_CUTOFF)
        assert header_hints.closest(word, choices) == (expected[0] if expected else None)


@pytest.mark.parametrize(
    ("text", "meant"),
    [("12,50", "12.50"), ("1.250,00", "1250.00"), ("-€ 3,5", "-3.5"), ("0,99", "0.99"), ("12,5x", None),
     ("abc", None), ("1,2,3", None),
     # no thousands group leads with 0: read as 500 and 1 before (a partner's half unit)
     ("0,500", "0.500"), ("0,001", "0.001"), ("$0,250", "0.250"), ("0,500,000", None)],
)  # fmt: skip
def test_an_amount_with_a_decimal_comma_is_rejected_saying_what_to_write(
    calls: Calls, text: str, meant: str | None
) -> None:
    """A spreadsheet set to a European locale exports 12,50: rejected (1,250 reads as one
    thousand two hundred and fifty, so a comma cannot be guessed either way), and the reason
    says the one change that fixes every row."""
    result = calls({"SaleAmount": text})
    assert where(result) == [(2, "SaleAmount", text)]
    reason = result.rejects[0].reason
    assert reason.startswith("expected an amount such as 12.50")
    assert ("a decimal comma? write" in reason) == (meant is not None)
    if meant is not None:
        assert f"write {meant}:" in reason


# ------------------------------------------------------------------ conversions


def test_conversion_quantity_is_a_non_negative_whole_number(engine: str) -> None:
    """Quantity was typed as a duration: 1.5 became 2, 1:30 became 90 and 2.4 became 2."""
    head = b"CampaignId,ActionTrackerId,EventDate,OrderId,Amount,Quantity\n"
    values = ["1.5", "1:30", "2.4", "-1", "3", " 4 ", "", "-0", "+5"]
    body = b"".join(
        f"1234,20002,2026-03-01T10:00:00Z,o-{i},10.00,{v}\n".encode() for i, v in enumerate(values)
    )
    result = parse(head + body, engine, "conversions")
    whole, negative = "expected a whole number (ASCII digits 0-9, no separators)", "must not be negative"
    assert [(r.line, r.column, r.reason) for r in result.rejects] == [
        (2, "Quantity", whole),
        (3, "Quantity", whole),
        (4, "Quantity", whole),
        (5, "Quantity", negative),
    ]
    assert col(result, "Quantity") == [3, 4, None, 0, 5]
    assert schemas.get("conversions").column("Quantity").kind is schemas.Kind.INTEGER


@pytest.mark.parametrize(
    "written, stored",
    [("in_stock", "InStock"), ("out_of_stock", "OutOfStock"), ("In Stock", "InStock"),
     ("back-order", "BackOrder"), ("preorder", "PreOrder"), ("INSTOCK", "InStock")],
)  # fmt: skip
def test_an_allowed_value_may_join_its_words_with_underscores_dashes_or_spaces(
    engine: str, written: str, stored: str
) -> None:
    """Found by the data-types audit: Google Merchant Center's own availability values
    (in_stock, out_of_stock) were refused, while instock and preorder were taken."""
    data = f"CatalogItemId,Name,Url,CurrentPrice,StockAvailability\r\nG-1,Widget,https://e.com/1,1.00,{written}\r\n"
    result = parse(data.encode(), engine, "product_catalogs")
    assert result.rejects == [] and result.table.column("StockAvailability").to_pylist() == [stored]


def test_words_of_an_allowed_value_must_all_be_there(engine: str, calls: Calls) -> None:
    result = calls(
        {"CallStatus": "unknown callerid"}, {"CallStatus": "in__stock_x"}, {"CallStatus": "UNKNOWN"}
    )
    assert result.table.column("CallStatus").to_pylist() == ["UNKNOWN_CALLERID"]
    assert [(r.line, r.column) for r in result.rejects] == [(3, "CallStatus"), (4, "CallStatus")]
