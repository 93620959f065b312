"""Preamble lines above a header: `Parameters:TimeZone=America/New_York` (Google Ads call
conversion uploads) and Excel's `sep=;` delimiter line. Shared by the parser and the sample
reader, so it imports nothing."""

from __future__ import annotations

PREAMBLE_PREFIX = "parameters:"
SEP_PREFIX = "sep="  # Excel's line naming the delimiter, written by exports meant for Excel
SEP_KEY = "sep"


def parse_preamble(line: str) -> dict[str, str] | None:
    """`Parameters:TimeZone=America/New_York` (Google Ads) -> {"TimeZone": "America/New_York"},
    `sep=;` (Excel) -> {"sep": ";"}; None when the line is not a preamble. Several settings
    may be separated by ';' or ','."""
    bare = line.rstrip("\r\n")
    if len(bare) == len(SEP_PREFIX) + 1 and bare[:-1].lower() == SEP_PREFIX:
        return {SEP_KEY: bare[-1]}
    text = line.strip().strip('"').strip()
    if not text.lower().startswith(PREAMBLE_PREFIX):
        return None
    out: dict[str, str] = {}
    for part in text[len(PREAMBLE_PREFIX) :].replace(";", ",").split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out
