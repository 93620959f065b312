"""Read the head of a sample file leniently: header, a few rows and any preamble.

Uses the parser's own decoding (gzip/zip, byte-order marks, UTF-16, the requested
encoding), so a sample reads as the real file will. Unlike the parser it never refuses:
a suggestion is wanted most for the files that do not load yet. The delimiter is sniffed
among the usual ones when the connection's own splits the header into a single name.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from connectbatch.errors import ConnectBatchError, ParseError
from connectbatch.mapping.preamble import parse_preamble
from connectbatch.parser import containers
from connectbatch.parser import decode as csvdecode
from connectbatch.parser.header_hints import HINT_DELIMITERS
from connectbatch.parser.plan import decode_header

SAMPLE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Sample:
    header: list[str]
    rows: list[list[str]]
    delimiter: str = ","
    preamble: dict[str, str] = field(default_factory=dict)  # e.g. {"TimeZone": "America/New_York"}

    def values(self, index: int) -> list[str]:
        return [row[index] for row in self.rows if index < len(row)]


def read_sample(data: bytes, *, encoding: str | None = None, delimiter: str = ",", rows: int = 50) -> Sample:
    """The header and the first `rows` records of `data`."""
    try:
        if containers.is_container(data[: containers.SNIFF_BYTES]):  # as parse_bytes looks
            payload: csvdecode.Readable | bytes = containers.open_payload(io.BytesIO(data), SAMPLE_BYTES * 4)
        else:
            payload = data[: SAMPLE_BYTES * 4]
        _enc, chunks = csvdecode.utf8_source(payload, encoding)
        raw = b""
        for chunk in chunks:
            raw += bytes(chunk)
            if len(raw) >= SAMPLE_BYTES:
                break
    except ConnectBatchError:
        raise
    except Exception as exc:  # a damaged archive: say so, as the parser would
        raise ParseError(f"cannot read the sample file: {exc}") from exc
    text = raw.decode("utf-8", "replace")
    lines = text.splitlines(keepends=True)
    preamble: dict[str, str] = {}
    header_line = 1
    while lines and (found := parse_preamble(lines[0])) is not None:
        preamble.update(found)
        lines.pop(0)
        header_line += 1
    body = "".join(lines)
    # The delimiter is sniffed on the header: the first line holding more than blanks and
    # delimiters (empty spreadsheet rows above a table are skipped, as the parser does).
    blank = " \t\r\n" + delimiter + "".join(HINT_DELIMITERS)
    first = next((line for line in lines if line.strip(blank)), "")
    delim = delimiter
    if len(_split(first, delim)) < 2:
        best = max(HINT_DELIMITERS, key=lambda d: len(_split(first, d)))
        if len(_split(first, best)) >= 2:
            delim = best
    records = list(_records(body, delim, rows + 1))
    if not records:
        raise ParseError("the sample file is empty: there is no header line")
    # Lenient, but not about what no mapping can fix: the parser refuses a header with a NUL
    # byte (a binary file, a spreadsheet saved as .csv), so the suggestion for one was a form
    # of "\x00\x01..." column names, ready to be saved as the connection's mapping.
    decode_header([h.encode("utf-8") for h in records[0]], header_line)
    return Sample([h.strip() for h in records[0]], records[1:], delim, preamble)


def _split(line: str, delim: str) -> list[str]:
    """The first line's fields, to choose the delimiter; none when the csv module refuses it
    (a field over its 128 KB limit): the app's wizard showed that error raw."""
    try:
        return next(csv.reader([line], delimiter=delim), [])
    except csv.Error:
        return []


def _records(body: str, delim: str, limit: int) -> list[list[str]]:
    out: list[list[str]] = []
    reader = csv.reader(io.StringIO(body), delimiter=delim)
    try:
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            out.append(record)
            if len(out) >= limit:
                break
    except csv.Error as exc:
        if not out:  # the header itself (a field over the csv module's 128 KB): no sample
            raise ParseError(f"the sample cannot be read as CSV: its header line: {exc}") from None
        # else a cut-off last record in the sample: keep what was read
    return out
