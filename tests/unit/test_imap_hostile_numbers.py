"""What a hostile IMAP server writes where numbers and lists belong (a pull audit): a UID or
RFC822.SIZE of 5,000 digits raised ValueError (past Python's limit for int()), and a
BODYSTRUCTURE nested 3,000 deep RecursionError, out of the pull: a scheduled run recorded
nothing, a manual one failed with an internal error, every time."""

from __future__ import annotations

import pytest

from connectbatch.transfer.pull.imap.response import MAX_NESTING, as_number, parse_fetch


@pytest.mark.parametrize("text", ["9" * 5000, "²", "١٢٣", "-1", "", "NIL", b"9" * 30])
def test_a_number_that_is_no_plain_number_is_none(text: str | bytes) -> None:
    assert as_number(text) is None


def test_plain_numbers_are_read() -> None:
    assert (as_number(b"42"), as_number(" 7 "), as_number("4294967295")) == (42, 7, 4294967295)


def nested(depth: int) -> bytes:
    """A FETCH response (as imaplib hands it) whose BODYSTRUCTURE nests `depth` lists."""
    return b"1 (UID 5 BODYSTRUCTURE " + b"(" * depth + b'"TEXT"' + b")" * depth + b")"


def test_a_structure_nested_past_the_limit_is_an_unreadable_response_not_a_crash() -> None:
    with pytest.raises(ValueError, match="nested more than"):
        parse_fetch([nested(3000)])
    [response] = parse_fetch([nested(MAX_NESTING - 1)])
    assert as_number(response["UID"]) == 5
