"""The FTP pull's name encoding (`transfer.pull.ftp.names`): any bytes a partner's server
sends in a listing or a reply are read, and go back to it unchanged."""

from __future__ import annotations

import io

from connectbatch.transfer.pull.ftp import names


def test_a_listing_line_not_in_utf8_is_read_and_its_name_sent_back_byte_for_byte() -> None:
    raw = b"Calls_caf\xe9.csv\r\nCalls_\xc3\xa9t\xc3\xa9.csv\r\n"
    lines = io.TextIOWrapper(io.BytesIO(raw), encoding=names.ENCODING, newline="").read().split("\r\n")
    latin, utf8 = lines[0], lines[1]
    assert latin.encode(names.ENCODING) == b"Calls_caf\xe9.csv"
    assert (names.readable(latin), names.readable(utf8)) == ("Calls_café.csv", "Calls_été.csv")


def test_text_holding_such_a_name_is_printable() -> None:
    wire = b"550 Calls_caf\xe9.csv: no".decode(names.ENCODING)
    assert names.printable(wire) == "550 Calls_caf\ufffd.csv: no"
    assert names.printable(wire).encode("utf-8")  # storable
