"""What happens before tokenizing: byte-order marks, encodings, containers, non-CSV files."""

from __future__ import annotations

import codecs
import gzip
import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connectbatch.errors import ConfigurationError, ParseError
from connectbatch.parser import containers
from connectbatch.parser import decode as csvdecode
from connectbatch.parser.api import ParseResult, check_timezone, parse_bytes, parse_file

XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504  # OLE2 compound document
TEXT = "id,name\n1,Łódź ☎\n"


def parse(data: bytes, engine: str, **kw: Any) -> ParseResult:
    return parse_bytes(data, None, engine=engine, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bom, name",
    [
        (codecs.BOM_UTF32_LE, "utf-32-le"),  # FF FE 00 00: must win over the UTF-16 LE mark
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ],
)
def test_byte_order_marks_are_detected_longest_first(engine: str, bom: bytes, name: str) -> None:
    head = bom + TEXT.encode(name)
    assert csvdecode.detect_encoding(head, None) == (csvdecode.Encoding(name, True), len(bom))
    result = parse(head, engine)
    assert (result.encoding, result.table.to_pylist()) == (name, [{"id": "1", "name": "Łódź ☎"}])


def test_a_byte_order_mark_wins_over_the_configured_encoding(engine: str) -> None:
    result = parse(codecs.BOM_UTF8 + TEXT.encode(), engine, encoding="latin-1")
    assert (result.encoding, result.header) == ("utf-8", ["id", "name"])


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_mark_is_refused_with_the_encoding_to_set(engine: str, codec: str) -> None:
    data = TEXT.encode(codec)
    with pytest.raises(ParseError, match=f"looks like UTF-16.*set the connection's encoding to {codec}"):
        parse(data, engine)
    assert parse(data, engine, encoding=codec).table.column("name").to_pylist() == ["Łódź ☎"]


@pytest.mark.parametrize("requested", ["utf-16", "UTF_32", "utf16"])
def test_utf16_or_utf32_without_a_mark_and_without_byte_order_is_ambiguous(
    engine: str, requested: str
) -> None:
    with pytest.raises(ParseError, match=f"no byte-order mark, so {requested} is ambiguous; use utf-"):
        parse(b"id\n1\n", engine, encoding=requested)


def test_text_invalid_in_utf16_rejects_only_that_row(engine: str) -> None:
    lone_surrogate = b"\x00\xd8"  # U+D800 on its own, little-endian
    body = "a,b\n1,2\n3,".encode("utf-16-le") + lone_surrogate + "\n5,6\n".encode("utf-16-le")
    result = parse(codecs.BOM_UTF16_LE + body, engine)
    assert (result.table.column("a").to_pylist(), result.lines.to_pylist()) == (["1", "5"], [2, 4])
    assert [(r.line, r.column) for r in result.rejects] == [(3, "b")]
    assert "not valid utf-16-le text" in result.rejects[0].reason


def test_unknown_encoding_is_a_configuration_error(engine: str) -> None:
    with pytest.raises(ConfigurationError, match="unknown encoding 'klingon'"):
        parse(b"id\n1\n", engine, encoding="klingon")


@pytest.mark.parametrize("event_date", ["2026-03-01 10:00", "2026-03-01T10:00Z"])
def test_unknown_time_zone_is_a_configuration_error_whatever_the_values(
    engine: str, call_csv: Callable[..., bytes], event_date: str
) -> None:
    # A mistyped connection setting must not depend on whether a file happens to hold
    # a date-time without an offset.
    data = call_csv({"EventDate": event_date})
    with pytest.raises(ConfigurationError, match="unknown time zone 'Mars/Olympus'"):
        parse_bytes(data, engine=engine, timezone="Mars/Olympus")  # type: ignore[arg-type]


def test_encoding_names_are_normalised() -> None:
    assert csvdecode.normalise_encoding("Latin_1") == "iso8859-1"
    assert csvdecode.normalise_encoding("UTF8") == "utf-8"
    assert csvdecode.normalise_encoding("windows-1252") == "cp1252"


@pytest.mark.parametrize("requested", ["latin-1", "ISO-8859-1", "cp1252", "windows-1252"])
def test_latin1_and_cp1252_are_read_as_windows_1252_as_browsers_read_them(
    engine: str, requested: str
) -> None:
    # Found with a partner's Windows export on a connection set to latin-1: curly quotes, the
    # euro sign and a dash were stored as C1 control characters ('Joe\x92s'), nothing rejected.
    text = "Café “Joe’s” €5 – ok"
    data = b"id,name\n1," + text.encode("cp1252") + b"\n2,a\x81b\n"  # 0x81: undefined in cp1252
    result = parse(data, engine, encoding=requested)
    assert result.encoding == "windows-1252"
    assert result.table.column("name").to_pylist() == [text, "a\x81b"]  # WHATWG: the C1 control
    assert result.rejects == []


def test_plain_text_is_passed_through_untouched() -> None:
    raw = io.BytesIO(TEXT.encode())
    assert containers.open_payload(raw) is raw


def test_gzip_and_zip_are_sniffed_by_content_not_by_name() -> None:
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("__MACOSX/._calls.csv", "junk")  # resource forks are ignored
        archive.writestr("calls.csv", TEXT)
    for payload in (gzip.compress(TEXT.encode()), packed.getvalue()):
        assert containers.open_payload(io.BytesIO(payload)).read() == TEXT.encode()


@pytest.mark.parametrize(
    "data, message",
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF document, not a CSV file"),
        (XLS_MAGIC, r"old Excel \(.xls\) workbook; save it as CSV"),
        (b"PK\x03\x04 this is no zip", "ZIP archive is damaged"),
        (gzip.compress(TEXT.encode())[:20], "compressed file is damaged"),
    ],
    ids=["pdf", "xls", "broken-zip", "truncated-gzip"],
)
def test_files_that_are_not_csv_get_a_clear_message(
    engine: str, tmp_path: Path, data: bytes, message: str
) -> None:
    (tmp_path / "upload.csv").write_bytes(data)
    with pytest.raises(ParseError, match=message):
        parse_file(tmp_path / "upload.csv", None, engine=engine)  # type: ignore[arg-type]
    with pytest.raises(ParseError, match=message):
        parse(data, engine)


def test_gzipped_and_single_member_zip_files_are_unpacked(engine: str, tmp_path: Path) -> None:
    (tmp_path / "calls.csv.gz").write_bytes(gzip.compress(TEXT.encode()))
    with zipfile.ZipFile(tmp_path / "calls.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("calls.csv", TEXT)
    for name in ("calls.csv.gz", "calls.zip"):
        result = parse_file(tmp_path / name, None, engine=engine)  # type: ignore[arg-type]
        assert result.table.to_pylist() == [{"id": "1", "name": "Łódź ☎"}]


def test_zip_archives_that_are_not_one_csv_are_refused(engine: str, tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
        archive.writestr("a.csv", "a\n1\n")
        archive.writestr("b.csv", "a\n2\n")
    with zipfile.ZipFile(tmp_path / "book.xlsx", "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(
        ParseError, match=r"one CSV file and nothing else; this one holds 2 files \(a.csv, b.csv\)"
    ):
        parse_file(tmp_path / "two.zip", None, engine=engine)  # type: ignore[arg-type]
    with pytest.raises(ParseError, match=r"Excel \(.xlsx\) workbook"):
        parse_file(tmp_path / "book.xlsx", None, engine=engine)  # type: ignore[arg-type]


def test_decompression_is_capped_by_max_bytes(engine: str, tmp_path: Path) -> None:
    bomb = gzip.compress(b"a\n" + b"0\n" * 2_000_000)  # 4 MB from about 4 KB
    (tmp_path / "bomb.csv.gz").write_bytes(bomb)
    limit = "limit of 100,000 bytes once decompressed"
    with pytest.raises(ParseError, match=limit):
        parse_file(tmp_path / "bomb.csv.gz", None, max_bytes=100_000, engine=engine)  # type: ignore[arg-type]
    with pytest.raises(ParseError, match=limit):
        parse(bomb, engine, max_bytes=100_000)


def test_plain_files_over_max_bytes_are_refused(engine: str, tmp_path: Path) -> None:
    (tmp_path / "big.csv").write_bytes(b"a\n" + b"1\n" * 100)
    with pytest.raises(ParseError, match="202 bytes, over the limit of 50 bytes"):
        parse_file(tmp_path / "big.csv", None, max_bytes=50, engine=engine)  # type: ignore[arg-type]


def test_a_missing_file_is_a_parse_error_naming_it(engine: str, tmp_path: Path) -> None:
    with pytest.raises(ParseError, match=r"cannot open .*nowhere\.csv"):
        parse_file(tmp_path / "nowhere.csv", None, engine=engine)  # type: ignore[arg-type]


@pytest.mark.parametrize("delimiter", ['"', ",,", "\n", "é", ""])
def test_unusable_delimiter_is_a_configuration_error(engine: str, delimiter: str) -> None:
    with pytest.raises(ConfigurationError, match="delimiter must be one ASCII character"):
        parse(b"a\n1\n", engine, delimiter=delimiter)


def test_undecodable_header_is_a_parse_error_suggesting_the_encoding(engine: str) -> None:
    with pytest.raises(ParseError, match=r"line 1: header column 2 is not valid utf-8 text.*latin-1"):
        parse(b"id,na\xefve\n1,2\n", engine)
    assert parse(b"id,na\xefve\n1,2\n", engine, encoding="latin-1").header == ["id", "naïve"]


@pytest.mark.parametrize("zone", ["America", "x" * 300])
def test_a_zone_name_the_file_system_refuses_is_a_configuration_error(zone: str) -> None:
    """zoneinfo raises IsADirectoryError / OSError for these, not ZoneInfoNotFoundError."""
    with pytest.raises(ConfigurationError, match="unknown time zone"):
        check_timezone(zone)


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"])
def test_nul_padding_after_the_last_line_is_ignored(engine: str, tmp_path: Path, end: bytes) -> None:
    """Some export tools pad a file with NULs to a block size: that was refused as UTF-16
    without a byte-order mark (the NULs were counted, not where they stand)."""
    data = b"id,name\n1,a\n2,b".replace(b"\n", end) + end + b"\x00" * 512
    (tmp_path / "padded.csv").write_bytes(data)
    for result in (parse(data, engine), parse_file(tmp_path / "padded.csv", None, engine=engine)):  # type: ignore[arg-type]
        assert (result.table.to_pylist(), result.rejects) == (
            [{"id": "1", "name": "a"}, {"id": "2", "name": "b"}],
            [],
        )


def test_nul_padding_split_across_reads_is_ignored_and_nuls_before_text_are_kept() -> None:
    chunks = [b"a\n1\n\x00\x00", b"\x00" * 3, memoryview(b"\x00x\n\x00"), b"\x00\x00"]
    assert b"".join(csvdecode._without_nul_padding(iter(chunks))) == b"a\n1\n\x00\x00\x00\x00\x00\x00x\n"
    # after a record with no line end the NULs are part of that record: the core rejects it
    assert b"".join(csvdecode._without_nul_padding(iter([b"a\n1", b"\x00\x00"]))) == b"a\n1\x00\x00"


def test_nuls_that_do_not_alternate_are_rejected_by_line_not_taken_for_utf16(engine: str) -> None:
    result = parse(b"id,name\n" + b"1,\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\n" * 20, engine)
    assert [r.line for r in result.rejects] == list(range(2, 22))
    assert {r.reason for r in result.rejects} == {"contains a NUL byte (binary data is not allowed)"}


@pytest.mark.parametrize("codec", ["utf-32-le", "utf-32-be"])
def test_utf32_without_a_mark_is_refused_with_the_encoding_to_set(engine: str, codec: str) -> None:
    with pytest.raises(ParseError, match=f"looks like UTF-32.*set the connection's encoding to {codec}"):
        parse(TEXT.encode(codec), engine)
