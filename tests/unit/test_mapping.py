"""Field mapping (issue 12, part 1): the suggestion engine's evidence and rules, the sample
reader, the Google Ads `Parameters:` preamble and constant columns in the parser, and the
saved, versioned, validated mapping behind `connectbatch connection mapping`."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import cli

from connectbatch import schemas
from connectbatch.cli import main
from connectbatch.errors import ConfigurationError, ParseError
from connectbatch.mapping import constants as mapping_constants
from connectbatch.mapping import values
from connectbatch.mapping.check import mismatch_message
from connectbatch.mapping.sample import read_sample
from connectbatch.mapping.suggest import suggest, suggest_header
from connectbatch.parser import api as csvparse
from connectbatch.parser.options import ParseOptions
from connectbatch.schemas import CALL_CONVERSIONS
from connectbatch.services import InvalidInputError, Services
from connectbatch.settings import Settings

FULL_ROW = {
    "CampaignId": "1234", "MediaId": "98765", "EventDate": "2026-03-01 14:05:09",
    "ActionTrackerId": "20001", "CallProvider": "Invoca", "CallSessionId": "cs-1",
    "CallerId": "+15551234567", "CalledPhoneNumber": "+18005550100", "CallDuration": "185",
    "TalkDuration": "160",
}  # fmt: skip


def csv_bytes(header: list[str], *rows: list[str], preamble: str = "") -> bytes:
    lines = ([preamble] if preamble else []) + [",".join(header)] + [",".join(r) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode()


def line(sample_bytes: bytes, header: str) -> Any:
    s = suggest(read_sample(sample_bytes), "call_conversions")
    return next(x for x in s.lines if x.header == header)


# ------------------------------------------------------------------ evidence, one by one


def test_each_line_says_why_exact_then_normalised_then_dictionary_then_similar() -> None:
    s = suggest_header(
        ["CallerId", "call_duration", "complete_call_id", "Talk Seconds", "Agent"], "call_conversions"
    )
    by = {x.header: x for x in s.lines}
    assert (by["CallerId"].target, by["CallerId"].reason) == ("CallerId", "exact name")
    assert by["call_duration"].target == "CallDuration" and "ignoring case" in by["call_duration"].reason
    assert by["complete_call_id"].target == "CallSessionId" and "Invoca" in by["complete_call_id"].reason
    assert by["Talk Seconds"].target == "TalkDuration" and "similar name" in by["Talk Seconds"].reason
    assert by["Agent"].target is None
    assert by["CallerId"].confidence > by["call_duration"].confidence > by["Talk Seconds"].confidence


def test_vendor_names_from_the_issue_are_known() -> None:
    s = suggest_header(
        ["complete_call_id", "calling_phone_number", "Caller's Phone Number", "duration", "connect_duration"],
        "call_conversions",
    )
    assert s.mapping == {
        "complete_call_id": "CallSessionId", "calling_phone_number": "CallerId",
        "Caller's Phone Number": None,  # CallerId is taken by the line before: never twice
        "duration": "CallDuration", "connect_duration": "TalkDuration",
    }  # fmt: skip


@pytest.mark.parametrize(
    "header, row, expected",
    [
        (
            ["id", "title", "link", "image_link", "availability", "price", "sale_price", "brand"],
            ["SKU-1", "Widget", "https://e.com/1", "https://e.com/1.jpg", "in_stock", "19.99", "", "Acme"],
            {"id": "CatalogItemId", "title": "Name", "link": "Url", "image_link": "ImageUrl",
             "availability": "StockAvailability", "price": "CurrentPrice", "sale_price": None,
             "brand": "Manufacturer"},
        ),
        (
            ["Handle", "Title", "Option1 Name", "Variant SKU", "Variant Price", "Variant Compare At Price"],
            ["cafe-mug", "Mug", "Size", "MUG-12", "19.99", "24.99"],
            {"Handle": None, "Title": "Name", "Option1 Name": None, "Variant SKU": "CatalogItemId",
             "Variant Price": "CurrentPrice", "Variant Compare At Price": "OriginalPrice"},
        ),
    ],
    ids=["merchant-center", "shopify"],
)  # fmt: skip
def test_product_feed_headers_are_known(
    header: list[str], row: list[str], expected: dict[str, str | None]
) -> None:
    """Found by the data-types audit: a Google Merchant Center feed's id, title, link, price
    and availability were left unmapped, and Shopify's "Option1 Name" was taken for Name."""
    s = suggest(read_sample(csv_bytes(header, row)), "product_catalogs")
    assert s.mapping == expected
    assert not [x.header for x in s.lines if x.unsure]


def test_a_column_of_ours_is_never_assigned_twice() -> None:
    s = suggest_header(["CallerId", "callerid", "Caller ID", "caller_number"], "call_conversions")
    targets = [t for t in s.mapping.values() if t is not None]
    assert targets == ["CallerId"]


def test_values_decide_between_two_durations_and_two_numbers() -> None:
    header = ["duration_a", "duration_b", "phone_number_a", "phone_number_b"]
    rows = [[str(50 + r), str(200 + r), "+18005550100", f"+1555000{1000 + r}"] for r in range(6)]
    s = suggest(read_sample(csv_bytes(header, *rows)), "call_conversions")
    assert s.mapping["duration_b"] == "CallDuration"  # the longer one is the whole call
    assert s.mapping["duration_a"] == "TalkDuration"
    assert s.mapping["phone_number_a"] == "CalledPhoneNumber"  # the tracking number repeats
    assert s.mapping["phone_number_b"] == "CallerId"
    assert all(x.unsure for x in s.lines)  # decided by values alone: the analyst looks


def test_values_that_contradict_a_name_drop_it() -> None:
    # 'Campaign' holds names, not ids: better a missing CampaignId (asked for) than a wrong one
    data = csv_bytes(["Campaign", "Caller ID"], ["Spring Sale", "+15551234567"], ["Brand", "+15551234568"])
    assert line(data, "Campaign").target is None


def test_a_required_column_found_only_by_its_values_is_flagged() -> None:
    data = csv_bytes(
        ["complete_call_id", "when"], ["c1", "2026-03-01T10:00:00Z"], ["c2", "2026-03-02T10:00:00Z"]
    )
    when = line(data, "when")
    assert when.target == "EventDate" and when.unsure and "values look like timestamps" in when.reason


# (data type, column, the Profile share that must say whether the parser takes the cell)
SHAPES = [
    ("call_conversions", "EventDate", "timestamp"), ("call_conversions", "CampaignId", "integer"),
    ("call_conversions", "CallDuration", "duration"), ("call_conversions", "SaleAmount", "decimal"),
    ("call_conversions", "CallerPhoneNumberCountry", "country"), ("conversions", "CurrencyCode", "currency"),
]  # fmt: skip
CELLS = [
    "12/01/2026 09:05:09 AM", "12/01/2026", "1/2/26", "2026-12-01", "2026-12-01 14:05:09",
    "2026-12-01T14:05:09Z", "2026-12-01 12:40:00-08:00", "20261201", "2026-13-01", "2026-02-30",
    "2026-12-01 9:05", "0:03:05", "3:05", "1:75", "185", "63.5", "-5", "+15551234567", "1e3",
    "$49.99", "49.999", "1,234.50", "12,34", "-$5", "US", "us", "ZZ", "UK", "usd", "XXX", "Brand",
]  # fmt: skip


@pytest.mark.parametrize(("data_type", "column", "share"), SHAPES)
def test_a_profile_says_a_cell_fits_exactly_when_the_parser_takes_it(
    data_type: str, column: str, share: str
) -> None:
    dtype = schemas.get(data_type)
    rows = [[cell if c.name == column else c.example for c in dtype.columns] for cell in CELLS]
    out = io.StringIO()
    csv.writer(out).writerows([dtype.column_names, *rows])
    result = csvparse.parse_bytes(out.getvalue().encode(), data_type)
    refused = {r.line - 2 for r in result.rejects}
    for i, cell in enumerate(CELLS):
        assert getattr(values.profile([cell]), share) == (0.0 if i in refused else 1.0), (column, cell)


def test_us_dates_do_not_fit_event_date_and_the_reason_says_what_the_partner_must_change() -> None:
    data = csv_bytes(
        ["Call Date", "Inbound Call ID"], ["12/01/2026 09:05:09 AM", "R1"], ["12/01/2026 10:05:09 PM", "R2"]
    )
    when = line(data, "Call Date")
    assert when.target == "EventDate" and when.unsure and when.confidence < 0.8
    assert "values fit" not in when.reason and "US-style dates" in when.reason and "ISO 8601" in when.reason


def test_a_required_column_empty_in_the_sample_gives_way_to_its_sibling_with_values() -> None:
    header = ["advertiser_campaign_id", "advertiser_campaign_id_from_network", "affiliate_id",
              "affiliate_id_from_network", "complete_call_id"]  # fmt: skip
    data = csv_bytes(header, ["1234", "", "98765", "", "cc-0"], ["1234", "", "98765", "", "cc-1"])
    s = suggest(read_sample(data), "call_conversions")
    by = {x.header: x for x in s.lines}
    assert s.mapping["advertiser_campaign_id"] == "CampaignId" and s.mapping["affiliate_id"] == "MediaId"
    assert s.mapping["advertiser_campaign_id_from_network"] is None
    assert s.mapping["affiliate_id_from_network"] is None
    for name in header[:4]:
        assert by[name].unsure and by[name].confidence < 0.8, name
    assert "empty in every sample row" in by["advertiser_campaign_id"].reason
    assert "empty in every sample row" in by["affiliate_id_from_network"].reason


def test_a_required_column_empty_in_the_sample_with_no_alternative_is_flagged() -> None:
    data = csv_bytes(["advertiser_campaign_id_from_network", "complete_call_id"], ["", "cc-0"], ["", "cc-1"])
    found = line(data, "advertiser_campaign_id_from_network")
    assert found.target == "CampaignId" and found.unsure and found.confidence < 0.8
    assert "empty in every sample row" in found.reason
    [named] = suggest_header(["advertiser_campaign_id_from_network"], "call_conversions").lines
    assert named.target == "CampaignId" and not named.unsure  # no rows: no evidence it is empty


@pytest.mark.parametrize(
    ("header", "cells", "shape"),
    [
        ("Conversion Value", ["49.99", "10"], "amounts"), ("duration", ["63.5", "120"], "durations"),
        ("Call Length In Seconds", ["185", "90"], "durations"),
        ("start_time_xml", ["2026-12-01"], "timestamps"),
    ],
)  # fmt: skip
def test_values_that_fit_are_described_as_the_shape_of_their_column(
    header: str, cells: list[str], shape: str
) -> None:
    assert line(csv_bytes([header], *[[c] for c in cells]), header).reason.endswith(f"values fit ({shape})")


def test_suggest_json_has_exactly_mapping_confidence_and_reasons() -> None:
    doc = suggest_header(["complete_call_id", "Agent"], "call_conversions").to_json()
    assert list(doc) == ["mapping", "confidence", "reasons"]
    assert doc["mapping"] == {"complete_call_id": "CallSessionId", "Agent": None}
    assert set(doc["confidence"]) == set(doc["reasons"]) == {"complete_call_id", "Agent"}


# ------------------------------------------------------------------ sample reader


def test_the_sample_reader_splits_a_preamble_sniffs_the_delimiter_and_unpacks_gzip() -> None:
    data = csv_bytes(["a;b;c"], ["1;2;3"], preamble="Parameters:TimeZone=America/New_York")
    s = read_sample(gzip.compress(data))
    assert s.preamble == {"TimeZone": "America/New_York"}
    assert (s.header, s.rows, s.delimiter) == (["a", "b", "c"], [["1", "2", "3"]], ";")


def test_the_sample_reader_sniffs_the_delimiter_on_the_header_below_empty_rows() -> None:
    # The delimiter was sniffed on the first line, here a line of spaces: the header read
    # as one name "a;b;c", as the parser (which skips such rows) never would
    s = read_sample(b"  \n;;\na;b;c\n1;2;3\n")
    assert (s.header, s.rows, s.delimiter) == (["a", "b", "c"], [["1", "2", "3"]], ";")


# ------------------------------------------------------------------ parser: preamble, constants


@pytest.mark.parametrize("engine", ["cython", "python"])
def test_a_parameters_preamble_is_split_off_and_its_time_zone_used(engine: str) -> None:
    header = list(FULL_ROW)
    data = csv_bytes(header, list(FULL_ROW.values()), preamble="Parameters:TimeZone=America/New_York")
    result = csvparse.parse_bytes(data, "call_conversions", engine=engine)  # type: ignore[arg-type]
    assert result.preamble == {"TimeZone": "America/New_York"}
    assert result.rows_accepted == 1 and result.header == header
    # 14:05:09 in New York (EST, -05:00) is 19:05:09Z, not 14:05:09Z (the connection's UTC)
    assert result.table.column("EventDate")[0].as_py() == dt.datetime(2026, 3, 1, 19, 5, 9, tzinfo=dt.UTC)


def test_a_preamble_offset_and_a_bad_zone() -> None:
    header = list(FULL_ROW)
    data = csv_bytes(header, list(FULL_ROW.values()), preamble="Parameters:TimeZone=-0500")
    got = csvparse.parse_bytes(data, "call_conversions").table.column("EventDate")[0].as_py()
    assert got == dt.datetime(2026, 3, 1, 19, 5, 9, tzinfo=dt.UTC)
    bad = csv_bytes(header, list(FULL_ROW.values()), preamble="Parameters:TimeZone=Mars/Olympus")
    with pytest.raises(ParseError, match=r"unknown time zone.*Mars/Olympus"):
        csvparse.parse_bytes(bad, "call_conversions")


@pytest.mark.parametrize("zone", ["America", "America/Los_Ange" + "\ufffd" * 300 + "les"])
def test_a_preamble_zone_the_file_system_refuses_is_a_clear_parse_error(zone: str) -> None:
    """Fuzz finding: a folder name or an over-long name made zoneinfo raise OSError
    (IsADirectoryError, "File name too long") out of the parser instead of a ParseError."""
    data = csv_bytes(list(FULL_ROW), list(FULL_ROW.values()), preamble=f"Parameters:TimeZone={zone}")
    with pytest.raises(ParseError, match="unknown time zone") as raised:
        csvparse.parse_bytes(data, "call_conversions")
    assert len(str(raised.value)) < 300  # the hostile name is cut, not echoed whole


@pytest.mark.parametrize("engine", ["cython", "python"])
def test_a_constant_fills_a_required_column_the_file_lacks(engine: str) -> None:
    row = dict(FULL_ROW)
    del row["CampaignId"], row["CallProvider"]
    data = csv_bytes(list(row), list(row.values()))
    with pytest.raises(ParseError, match="CampaignId"):
        csvparse.parse_bytes(data, "call_conversions", engine=engine)  # type: ignore[arg-type]
    options = ParseOptions(engine=engine, constants={"CampaignId": "1234", "CallProvider": "Acme"})  # type: ignore[arg-type]
    result = csvparse.parse_bytes(data, options=options)
    assert result.table.column("CampaignId").to_pylist() == [1234]
    assert result.table.column("CallProvider").to_pylist() == ["Acme"]
    assert result.table.schema == CALL_CONVERSIONS.arrow_schema()


def test_a_date_constant_without_an_offset_is_read_in_the_files_time_zone() -> None:
    """As the file's own cells are: a partner in New York sending no EventDate column means
    10:00 in New York, not 10:00 UTC."""
    row = dict(FULL_ROW)
    del row["EventDate"]
    data = csv_bytes(list(row), list(row.values()))
    options = ParseOptions(timezone="America/New_York", constants={"EventDate": "2026-12-01 10:00:00"})
    result = csvparse.parse_bytes(data, "call_conversions", options=options)
    [stored] = result.table.column("EventDate").to_pylist()
    assert stored.isoformat() == "2026-12-01T15:00:00+00:00"


def test_constants_are_checked_against_the_data_type() -> None:
    with pytest.raises(ConfigurationError, match="not a column"):
        mapping_constants.check(CALL_CONVERSIONS, {"Campaign": "1"})
    with pytest.raises(ConfigurationError, match=r"CampaignId: 'twelve': expected a whole number"):
        mapping_constants.check(CALL_CONVERSIONS, {"campaignid": "twelve"})
    assert mapping_constants.check(CALL_CONVERSIONS, {"campaignid": " 12 "}) == {"CampaignId": "12"}


def test_a_constant_the_parser_would_refuse_in_a_cell_is_refused_with_its_reason() -> None:
    with pytest.raises(ConfigurationError) as raised:
        mapping_constants.check(
            CALL_CONVERSIONS,
            {"CalledPhoneNumberCountry": "gb", "CallStatus": "bogus", "CallerPhoneNumberCountry": "zz"},
        )
    message = str(raised.value)
    assert "constant for CallStatus: 'bogus': expected one of UNKNOWN_CALLERID" in message
    assert "constant for CallerPhoneNumberCountry: 'zz': expected a two-letter ISO 3166-1" in message
    assert "CalledPhoneNumberCountry" not in message  # 'gb' is a country a cell may hold


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("EventDate", "2026-12-01"), ("EventDate", "2026-12-01 14:05:09"), ("EventDate", "20261201T140509Z"),
        ("CallDuration", "0:03:05"), ("CallDuration", "63.5"), ("SaleAmount", "$49.99"),
        ("SaleAmount", "1,234.50"), ("CallStatus", "cancel"),
    ],
)  # fmt: skip
def test_a_constant_may_hold_whatever_a_cell_of_its_column_may(column: str, value: str) -> None:
    assert mapping_constants.check(CALL_CONVERSIONS, {column: value}) == {column: value}


@pytest.mark.parametrize("data_type", sorted(schemas.REGISTRY))
def test_a_key_column_never_takes_a_constant(data_type: str) -> None:
    dtype = schemas.get(data_type)
    key = dtype.key_columns[0]
    example = dtype.column(key).example
    with pytest.raises(ConfigurationError, match=f"constant for {key}: {key} identifies each row"):
        mapping_constants.check(dtype, {key.lower(): example})


def test_suggest_offers_no_constant_for_a_missing_key_column() -> None:
    sample = read_sample(
        csv_bytes(["Caller's Phone Number", "Conversion Time"], ["+15551234567", "2026-03-01"])
    )
    s = suggest(sample, "call_conversions")
    assert "CallSessionId" not in s.missing_required and "CampaignId" in s.missing_required
    assert s.missing_keys == ["CallSessionId"]


@pytest.mark.parametrize("data_type", sorted(schemas.REGISTRY))
def test_each_data_types_example_row_parses(data_type: str) -> None:
    """Constants are checked in a one-row file whose other required columns hold the
    examples: an example the parser refused would be blamed on the analyst's constant."""
    result = csvparse.parse_bytes(schemas.get(data_type).template_csv().encode(), data_type)
    assert (result.table.num_rows, result.rejects) == (1, [])


@pytest.mark.parametrize("engine", ["cython", "python"])
def test_a_constant_wins_over_the_schema_default_but_not_over_a_value_in_the_file(engine: str) -> None:
    constants = {"CalledPhoneNumberCountry": "gb", "CallStatus": "CANCEL", "EventDate": "2026-12-01"}
    row = {k: v for k, v in FULL_ROW.items() if k != "EventDate"}
    absent = csv_bytes(list(row), list(row.values()))
    options = ParseOptions(engine=engine, constants=constants)  # type: ignore[arg-type]
    table = csvparse.parse_bytes(absent, options=options).table
    assert table.column("CalledPhoneNumberCountry").to_pylist() == ["GB"]  # not the default US
    assert table.column("CallStatus").to_pylist() == ["CANCEL"]  # not the default ANSWER
    assert table.column("EventDate").to_pylist() == [dt.datetime(2026, 12, 1, tzinfo=dt.UTC)]
    header = [*row, "CalledPhoneNumberCountry", "CallStatus"]
    present = csv_bytes(header, [*row.values(), "", "FAILURE"], [*row.values(), "fr", " "])
    table = csvparse.parse_bytes(present, options=options).table
    assert table.column("CalledPhoneNumberCountry").to_pylist() == ["GB", "FR"]
    assert table.column("CallStatus").to_pylist() == ["FAILURE", "CANCEL"]
    assert table.schema == CALL_CONVERSIONS.arrow_schema()


def test_a_header_that_lost_a_mapped_column_gets_a_suggested_update() -> None:
    saved: dict[str, str | None] = {"calling_phone_number": "CallerId", "notes": None}
    sample = read_sample(csv_bytes(["Caller ID", "notes"], ["+15551234567", "x"]))
    message = mismatch_message(sample, saved, 3, "call_conversions")
    assert message is not None
    assert "mapping version 3" in message and "'calling_phone_number' (-> CallerId)" in message
    assert "new columns: 'Caller ID'" in message and '"Caller ID": "CallerId"' in message
    same = read_sample(csv_bytes(["calling_phone_number"], ["+15551234567"]))
    assert mismatch_message(same, saved, 3, "call_conversions") is None


# ------------------------------------------------------------------ saved, versioned, validated


@pytest.fixture
def svc(tmp_path: Path) -> Services:
    return Services(Settings(home=tmp_path / "home", lock_timeout=10.0))


def _connection(svc: Services) -> str:
    from connectbatch.models import Connection, Direction, Method, Methodology

    draft = Connection(
        name="Vendor", data_type="call_conversions", direction=Direction.INBOUND,
        method=Method.SFTP, methodology=Methodology.PUSH,
    )  # fmt: skip
    svc.create_connection(draft)
    return "Vendor"


def test_set_mapping_refuses_unknown_columns_and_duplicates(svc: Services) -> None:
    name = _connection(svc)
    with pytest.raises(InvalidInputError, match="'Nope' is not a column of Call conversions"):
        svc.set_mapping(name, {"a": "Nope"})
    with pytest.raises(InvalidInputError, match="CallerId is mapped twice: from 'a' and from 'b'"):
        svc.set_mapping(name, {"a": "CallerId", "b": "callerid"})
    with pytest.raises(InvalidInputError, match="listed twice"):
        svc.set_mapping(name, {"a": "CallerId", " A ": None})
    with pytest.raises(InvalidInputError, match="constants"):
        svc.set_mapping(name, {"a": "CallerId"}, {"CampaignId": "x"})
    assert svc.mapping(name) is None


def test_each_save_is_a_new_version_and_becomes_the_column_map(svc: Services) -> None:
    name = _connection(svc)
    first = svc.set_mapping(name, {"calling_phone_number": "callerid", "notes": None}, {"CampaignId": "1"})
    second = svc.set_mapping(name, {"Caller ID": "CallerId"})
    assert (first.version, second.version) == (1, 2)
    assert first.columns == {"calling_phone_number": "CallerId", "notes": None}
    assert svc.connection(name).column_map == {"Caller ID": "CallerId"}
    assert [m.version for m in svc.mapping_versions(name)] == [2, 1]
    current = svc.mapping(name)
    assert current is not None and current.version == 2 and current.constants == {}


# ------------------------------------------------------------------ CLI


def test_cli_mapping_suggest_set_show(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "partner", "add", "Vend", "--type", "vendor")
    cli(capsys, "connection", "add", "--name", "G", "--type", "call_conversions", "--direction", "inbound",
        "--method", "sftp", "--methodology", "push", "--partner", "Vend")  # fmt: skip
    sample = tmp_path / "google.csv"
    sample.write_bytes(
        csv_bytes(["Caller's Phone Number", "Conversion Time", "Conversion Name"],
                  ["+15551234567", "2026-03-01 12:32:45-08:00", "Sale"],
                  preamble="Parameters:TimeZone=America/Los_Angeles")
    )  # fmt: skip
    out = cli(capsys, "connection", "mapping", "suggest", "G", str(sample), "--json")
    doc = json.loads(out)
    assert out.count("\n") == 1 and list(doc) == ["mapping", "confidence", "reasons"]
    assert doc["mapping"] == {
        "Caller's Phone Number": "CallerId", "Conversion Time": "EventDate",
        "Conversion Name": "DispositionName",
    }  # fmt: skip
    assert (
        json.loads(cli(capsys, "connection", "mapping", "show", "G", "--json"))["version"] is None
    )  # not saved
    doc["constants"] = {"CampaignId": "1234"}
    saved = tmp_path / "m.json"
    saved.write_text(json.dumps(doc))
    assert "version 1" in cli(capsys, "connection", "mapping", "set", "G", "--from-json", str(saved))
    shown = json.loads(cli(capsys, "connection", "mapping", "show", "G", "--json"))
    assert shown["version"] == 1 and shown["constants"] == {"CampaignId": "1234"}
    assert shown["mapping"]["Caller's Phone Number"] == "CallerId"
    assert "Caller's Phone Number" in cli(capsys, "connection", "mapping", "show", "G")
    out = cli(capsys, "connection", "mapping", "suggest", "G", str(sample))
    offered = next(x for x in out.splitlines() if "give them a constant" in x)
    assert "CampaignId" in offered and "CallSessionId" not in offered
    assert "CallSessionId" in next(x for x in out.splitlines() if "the partner must send them" in x)
    saved.write_text(json.dumps({"mapping": doc["mapping"], "constants": {"CallSessionId": "gads"}}))
    assert main(["connection", "mapping", "set", "G", "--from-json", str(saved)]) == 2
    err = capsys.readouterr().err
    assert "constant for CallSessionId: CallSessionId identifies each row" in err
    saved.write_text(json.dumps({"mapping": {"a": "CallerId", "b": "CallerId"}}))
    assert main(["connection", "mapping", "set", "G", "--from-json", str(saved)]) == 2
    err = capsys.readouterr().err
    assert "CallerId is mapped twice" in err and "Traceback" not in err


def test_cli_suggest_prints_a_set_command_that_can_be_pasted(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hint named the connection as typed into the list, `mapping set Acme calls --from-json
    F`: pasted, the shell split the name and argparse refused the command."""
    cli(capsys, "partner", "add", "Vend", "--type", "vendor")
    cli(capsys, "connection", "add", "--name", "Acme calls", "--direction", "inbound",
        "--method", "sftp", "--methodology", "push", "--partner", "Vend")  # fmt: skip
    sample = tmp_path / "calls.csv"
    sample.write_bytes(csv_bytes(["Caller", "Duration"], ["+15551234567", "185"]))

    out = cli(capsys, "connection", "mapping", "suggest", "Acme calls", str(sample))

    hint = out.splitlines()[-1]
    command = hint[hint.index("`") + 1 : hint.rindex("`")]
    assert shlex.split(command)[:5] == ["connectbatch", "connection", "mapping", "set", "Acme calls"]


def test_cli_mapping_show_dates_the_version_as_every_command_does(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mapping show` printed the raw timestamp (2026-12-05 19:47:42.355141+00:00) where every
    other command prints 2026-12-05 19:47 UTC."""
    cli(capsys, "partner", "add", "Vend", "--type", "vendor")
    cli(capsys, "connection", "add", "--name", "G", "--direction", "inbound",
        "--method", "sftp", "--methodology", "push", "--partner", "Vend")  # fmt: skip
    saved = tmp_path / "m.json"
    saved.write_text(json.dumps({"mapping": {"Caller": "CallerId"}}))
    cli(capsys, "connection", "mapping", "set", "G", "--from-json", str(saved))

    first = cli(capsys, "connection", "mapping", "show", "G").splitlines()[0]

    assert re.fullmatch(r"field mapping version 1, saved \d{4}-\d\d-\d\d \d\d:\d\d UTC by \S+", first), first


def test_a_tar_sample_is_named_as_a_tar_as_parse_bytes_names_it() -> None:
    """The sample reader looked at 8 bytes for a container, where a tar's mark is at 257: a
    tar sample was read as text (a header of NUL bytes) instead of refused for what it is."""
    import tarfile

    buffer = io.BytesIO()
    data = b"CampaignId,MediaId\n1,2\n"
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        member = tarfile.TarInfo("calls.csv")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    with pytest.raises(ParseError, match="tar archives are not read"):
        read_sample(buffer.getvalue())


def test_phone_numbers_written_with_a_parenthesis_fit_the_phone_columns() -> None:
    """Marchex's "(555) 123-4567": the profile required a leading digit, so "Caller Number"
    was ignored and a constant CallerId proposed, though the parser takes any phone text."""
    data = csv_bytes(
        ["Call ID", "Caller Number", "Tracking Number"],
        ["c1", "(555) 123-4567", "(800) 555-0100"], ["c2", "(555) 123-4568", "(800) 555-0100"],
    )  # fmt: skip
    assert line(data, "Caller Number").target == "CallerId"
    assert line(data, "Tracking Number").target == "CalledPhoneNumber"


def test_a_vendor_date_column_in_a_format_the_parser_refuses_stays_flagged() -> None:
    """CallTrackingMetrics' called_at, "2026-12-05 10:00 AM -05:00": the name is a known
    one, so the column is EventDate in another format, not a missing EventDate to fill with
    a constant."""
    data = csv_bytes(
        ["called_at", "id"], ["2026-12-05 10:00 AM -05:00", "1"], ["2026-12-05 11:00 AM -05:00", "2"]
    )
    when = line(data, "called_at")
    assert when.target == "EventDate" and when.unsure
    assert "not ISO 8601 timestamps" in when.reason and "2026-12-05 10:00 AM -05:00" in when.reason
    s = suggest(read_sample(data), "call_conversions")
    assert "EventDate" not in s.missing_required
