"""The parser's public entry point at its first-release import path.

Scripts and notebooks written against `connectbatch.csvparse` keep working; the code lives in
`connectbatch.parser` (see that package's docstring for how the parts fit together).
"""

from connectbatch.parser.api import ParseResult, Reject, check_timezone, parse_bytes, parse_file

__all__ = ["ParseResult", "Reject", "check_timezone", "parse_bytes", "parse_file"]
