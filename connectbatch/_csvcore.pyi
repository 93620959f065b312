"""Typed surface of the Cython parser core (same interface as connectbatch.parser.refcore)."""

from connectbatch.parser.plan import CoreOutput, Plan

# The .pxd enums by name; equal to plan.CoreKind / Code / HeaderStatus (checked on first use).
KINDS: dict[str, int]
CODES: dict[str, int]
HEADER_STATUSES: dict[str, int]

HEADER_OK: int
HEADER_INCOMPLETE: int
HEADER_EMPTY: int
HEADER_UNTERMINATED: int
HEADER_JUNK: int

def read_header(
    data: bytes | bytearray | memoryview, delimiter: int, final: bool
) -> tuple[int, list[bytes], int, int, int]: ...

class Parser:
    def __init__(self, plan: Plan, first_line: int) -> None: ...
    @property
    def rows(self) -> int: ...
    def feed(self, data: bytes | bytearray | memoryview, final: bool) -> None: ...
    def finish(self) -> CoreOutput: ...
