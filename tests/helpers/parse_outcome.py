"""What the parser tests compare: everything a parse tells its caller, and the compiled core.

Shared by the tests that hold one way of parsing to another (threads, a mapped file, the
SSE2 fast path, the reference core), so they all compare the same things."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from connectbatch.errors import ConnectBatchError, ParseError


def compiled_core() -> ModuleType:
    """The Cython core; a test that needs it fails (not skips) when it is not built."""
    try:
        from connectbatch import _csvcore
    except ImportError as exc:
        pytest.fail(f"the compiled core is not built ({exc}); run `make build` first")
    return _csvcore


def outcome(parse: Any, *args: Any, **kw: Any) -> tuple[Any, ...]:
    """Everything a parse tells its caller, comparable with ==; a ParseError by its text."""
    try:
        r = parse(*args, **kw)
    except ParseError as exc:
        return ("ParseError", str(exc))
    return (
        r.table.schema, r.table.to_pylist(), r.rejects, r.lines.to_pylist(), r.reject_keys,
        r.reject_qualifiers, r.unknown_columns, r.header, r.encoding, r.preamble,
    )  # fmt: skip


def observed(run: Any) -> tuple[Any, ...]:
    """Everything a caller can observe of one parse `run()`, or the error it raised (any
    ConnectBatchError, by class and text): for comparing the two cores."""
    try:
        r = run()
    except ConnectBatchError as exc:
        return ("error", type(exc).__name__, str(exc))
    lines = r.lines.to_pylist()
    return (
        "ok", r.table, r.rejects, r.unknown_columns, lines, r.header, r.encoding, r.reject_keys,
        r.reject_qualifiers,
    )  # fmt: skip
