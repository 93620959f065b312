"""The Mapping tab's sample is read leniently, but not a file no mapping can make load (an
audit of 2026-12-07): a binary file uploaded as the partner's sample was offered a mapping
of columns named "\\x00\\x01\\x02...", ready to save as the connection's, while its dry run
and every real delivery said "header column 1 contains a NUL byte; is this a CSV file?"."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectbatch.errors import ParseError
from connectbatch.mapping.sample import read_sample
from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services
from connectbatch.settings import Settings

BINARY = bytes(range(256)) * 8


def test_a_binary_sample_is_refused_with_the_parsers_words(tmp_path: Path) -> None:
    services = Services(Settings(home=tmp_path, sftp_port=0, ftp_port=0))
    services.add_partner("Acme", "vendor")
    draft = Connection(
        "Calls", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH, pattern="*"
    )
    created, _ = services.create_connection(draft, partner="Acme")
    refused = r"^line 1: header column 1 contains a NUL byte; is this a CSV file\?$"
    with pytest.raises(ParseError, match=refused):
        services.suggest_mapping(created.id, BINARY)


def test_a_nul_in_a_later_header_column_names_that_column_and_the_header_line() -> None:
    data = b"sep=,\r\nCaller,Dur\x00ation\r\n1,2\r\n"  # Excel's line above the header
    with pytest.raises(ParseError, match=r"^line 2: header column 2 contains a NUL byte"):
        read_sample(data)


def test_a_sample_with_odd_header_names_is_still_read_leniently() -> None:
    sample = read_sample("Caller ☎,Dauer (s),<b>x</b>\r\n1,2,3\r\n".encode())
    assert sample.header == ["Caller ☎", "Dauer (s)", "<b>x</b>"]
    assert sample.rows == [["1", "2", "3"]]
