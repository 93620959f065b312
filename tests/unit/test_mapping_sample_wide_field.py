"""A sample whose first line holds a field over the csv module's 128 KB limit is read as far
as it can be, never raising the csv module's own error (the app's wizard showed it raw)."""

from __future__ import annotations

import pytest

from connectbatch.errors import ParseError
from connectbatch.mapping.sample import read_sample


def test_a_header_with_a_huge_field_is_a_parse_error_a_person_can_read() -> None:
    data = b"Caller," + b"x" * 200_000 + b"\n1,2\n"
    with pytest.raises(ParseError, match="cannot be read as CSV: its header line"):
        read_sample(data)
