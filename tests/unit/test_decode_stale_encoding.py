"""A connection set to a legacy encoding still reads a file that is plainly UTF-8.

The connection's encoding is a setting made once; a partner who later moves its export to
UTF-8 (without a byte-order mark) had every accented value loaded garbled, 'Télé' as
'TÃ©lÃ©', with no reject and nothing in the summary: a silent loss. Valid UTF-8 with
non-ASCII characters is read as UTF-8, as a BOM already wins over the setting; text that
is not valid UTF-8 is still read in the configured encoding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectbatch.parser import decode as csvdecode
from connectbatch.parser.api import ParseResult, parse_bytes, parse_file

TEXT = "id,name\n1,Télé Société ☎\n2,Müller\n"


def parse(data: bytes, engine: str, **kw: Any) -> ParseResult:
    return parse_bytes(data, None, engine=engine, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("requested", ["cp1252", "latin-1", "iso-8859-15"])
def test_utf8_text_is_read_as_utf8_whatever_legacy_encoding_is_set(engine: str, requested: str) -> None:
    result = parse(TEXT.encode("utf-8"), engine, encoding=requested)
    assert result.encoding == "utf-8"
    assert result.table.column("name").to_pylist() == ["Télé Société ☎", "Müller"]
    assert result.rejects == []


@pytest.mark.parametrize("requested", ["cp1252", "latin-1"])
def test_text_in_the_set_encoding_is_still_read_in_it(engine: str, requested: str) -> None:
    data = "id,name\n1,José Müller\n".encode(requested)
    result = parse(data, engine, encoding=requested)
    assert result.table.column("name").to_pylist() == ["José Müller"]


def test_a_head_cut_inside_a_character_still_counts_as_utf8() -> None:
    data = "id,name\n1,é".encode()
    assert csvdecode.detect_encoding(data[:-1], "cp1252") == (csvdecode.Encoding("utf-8", False), 0)


def test_an_ascii_head_keeps_the_set_encoding() -> None:
    # cp1252 (and latin-1) are read as the windows-1252 browsers read (decode.WINDOWS_1252)
    assert csvdecode.detect_encoding(b"id,name\n1,a\n", "cp1252") == (
        csvdecode.Encoding("windows-1252", False),
        0,
    )
    assert csvdecode.detect_encoding(b"id,name\n", "utf-16-le") == (csvdecode.Encoding("utf-16-le", False), 0)


def _late_accent(tmp_path: Path, encoding: str, ascii_bytes: int) -> Path:
    """A file of plain ASCII rows for `ascii_bytes`, then one accented name."""
    row = "1,Springfield\n"
    text = "id,name\n" + row * (ascii_bytes // len(row)) + "2,Zürich\n"
    path = tmp_path / "late.csv"
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize("mapped", [False, True])
def test_utf8_text_after_an_ascii_head_is_read_as_utf8_however_far_down(tmp_path: Path, mapped: bool) -> None:
    """Past the head detect_encoding sees (8 MB read, 64 KB before a mapping): the same
    rows in a smaller file were read right, while here 'Zürich' was stored 'ZÃ¼rich'."""
    path = _late_accent(tmp_path, "utf-8", csvdecode.CHUNK_SIZE + 1024)
    with open(path, "rb") as payload:
        encoding, chunks = csvdecode.utf8_source(payload, "cp1252", reuse=True, mapped=mapped)
        text = b"".join(bytes(c) for c in chunks)
    assert encoding == csvdecode.Encoding("utf-8", False)
    assert text.endswith("2,Zürich\n".encode())
    assert parse_file(path, None, encoding="cp1252").table.column("name").to_pylist()[-1] == "Zürich"


def test_legacy_text_after_an_ascii_head_keeps_the_set_encoding(tmp_path: Path) -> None:
    path = _late_accent(tmp_path, "cp1252", csvdecode.CHUNK_SIZE + 1024)
    result = parse_file(path, None, encoding="cp1252")
    assert result.encoding == "windows-1252"
    assert result.table.column("name").to_pylist()[-1] == "Zürich"


def test_utf8_bytes_after_an_ascii_head_are_read_as_utf8(tmp_path: Path) -> None:
    data = _late_accent(tmp_path, "utf-8", csvdecode.CHUNK_SIZE + 1024).read_bytes()
    assert parse(data, "cython", encoding="cp1252").table.column("name").to_pylist()[-1] == "Zürich"


def test_text_that_is_not_utf8_names_mac_roman_beside_cp1252(engine: str) -> None:
    """An older Mac's export (CR line ends, 'é' as 0x8E): the hint named only latin-1 and
    cp1252, and following it loaded 'MontrŽal' with nothing rejected."""
    data = b"id,name\r1,Montr\x8eal\r"
    [reject] = parse(data, engine).rejects
    assert "older Mac (mac_roman)" in reject.reason
    assert parse(data, engine, encoding="mac_roman").table.column("name").to_pylist() == ["Montréal"]
