"""Preamble lines above a header: `Parameters:TimeZone=America/New_York` (Google Ads call
conversion uploads). Shared by the parser and the sample reader, so it imports nothing."""

from __future__ import annotations

PREAMBLE_PREFIX = "parameters:"


def parse_preamble(line: str) -> dict[str, str] | None:
    """`Parameters:TimeZone=America/New_York` (Google Ads) -> {"TimeZone": "America/New_York"};
    None when the line is not a preamble. Several settings may be separated by ';' or ','."""
    text = line.strip().strip('"').strip()
    if not text.lower().startswith(PREAMBLE_PREFIX):
        return None
    out: dict[str, str] = {}
    for part in text[len(PREAMBLE_PREFIX) :].replace(";", ",").split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out
