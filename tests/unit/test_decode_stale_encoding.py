"""A connection set to a legacy encoding still reads a file that is plainly UTF-8.

The connection's encoding is a setting made once; a partner who later moves its export to
UTF-8 (without a byte-order mark) had every accented value loaded garbled, 'Télé' as
'TÃ©lÃ©', with no reject and nothing in the summary: a silent loss. Valid UTF-8 with
non-ASCII characters is read as UTF-8, as a BOM already wins over the setting; text that
is not valid UTF-8 is still read in the configured encoding.
"""

from __future__ import annotations

from typing import Any

import pytest

from connectbatch.parser import decode as csvdecode
from connectbatch.parser.api import ParseResult, parse_bytes

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
