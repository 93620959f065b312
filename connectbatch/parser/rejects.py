"""What a parse says of the records it refused (parser.api re-exports both)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


@dataclass(frozen=True)
class Reject:
    """One problem with one record: where it is, what it holds, what was expected."""

    line: int  # physical line the record starts on; the header is line 1
    column: str | None  # schema column (or the file's own name for unmapped ones)
    value: str | None  # the offending text, cut to a readable length
    reason: str
    # physical lines the record took, when more than its own: a stray quote can take hundreds
    # of lines into one rejected record, and the reject rate must count them (not compared)
    spans: int = field(default=1, compare=False)

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        shown = f" value {self.value!r}:" if self.value is not None else ""
        return f"{where}:{shown} {self.reason}"


class RejectKeys(NamedTuple):
    """Each rejected row's key and its qualifier (VendorEventId), by line, as far as read."""

    keys: dict[int, str]
    qualifiers: dict[int, str]
