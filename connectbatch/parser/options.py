"""How to read one file: the settings `parse_bytes` / `parse_file` accept, in one value.

`ParseOptions` is what travels through the parser's internals instead of the same keywords
repeated at every step. The public functions still take the keywords one by one (the
documented form); `options=` is the form for callers that keep settings together, such as a
connection. Checking the values stays where it was (the delimiter and time zone when the
parse starts), so errors and their order do not depend on which form was used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from connectbatch.parser.decode import DEFAULT_MAX_BYTES

Engine = Literal["cython", "python"]
Progress = Callable[[int, int], None]  # (bytes read, rows accepted so far)


@dataclass(frozen=True)
class ParseOptions:
    """Every setting of one parse; the defaults are those of `parse_bytes` / `parse_file`."""

    encoding: str | None = None  # None: detect (BOM, UTF-16), else UTF-8
    column_map: dict[str, str] | None = None  # partner column name -> schema column name
    delimiter: str = ","
    timezone: str = "UTC"  # for timestamps written without an offset
    max_bytes: int = DEFAULT_MAX_BYTES  # after decompression
    engine: Engine = "cython"
    progress: Progress | None = None
    # our column -> fixed value for a column the file lacks (connectbatch.mapping.constants)
    constants: dict[str, str] | None = None
    # threads for one parse (None: CONNECTBATCH_PARSE_THREADS, default the cores); results
    # are the same whatever the number (connectbatch.parser.blocks)
    threads: int | None = None

    @classmethod
    def merge(cls, options: ParseOptions | None, **keywords: Any) -> ParseOptions:
        """The options of one call: `options` or the individual keywords, not both.

        A keyword left at its default does not count as given, so `parse_file(path,
        options=opts)` and `parse_file(path, timezone="UTC")` both work, while
        `parse_file(path, options=opts, timezone="Europe/Paris")` is refused rather than
        silently preferring one of the two."""
        given = {
            name: value
            for name, value in keywords.items()
            if value is not _DEFAULTS[name] and value != _DEFAULTS[name]
        }
        if options is None:
            return cls(**given)
        if given:
            raise TypeError(
                f"pass either options= or the keyword arguments, not both (got {', '.join(sorted(given))})"
            )
        return options


_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(ParseOptions)}
