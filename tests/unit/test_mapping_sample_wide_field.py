"""A sample whose first line holds a field over the csv module's 128 KB limit is read as far
as it can be, never raising the csv module's own error (the app's wizard showed it raw)."""

from __future__ import annotations

from connectbatch.errors import ParseError
from connectbatch.mapping.sample import read_sample


def test_a_header_with_a_huge_field_gives_a_sample_or_a_parse_error() -> None:
    data = b"Caller," + b"x" * 200_000 + b"\n1,2\n"
    try:
        sample = read_sample(data)
    except ParseError as exc:  # a refusal a person can read is fine too
        assert "header" in str(exc) or "empty" in str(exc)
        return
    assert sample.header[0] == "Caller"
