"""The tokenizer's 64-bytes-at-a-time fast path against the reference core.

The fast path only runs where 64 bytes are left in the buffer, so the short files of the
other parity tests reach it rarely: these records are wide (many short fields, as partner
files are), with the bytes that stop it (quotes at a field's start, NUL, non-ASCII, tabs,
CR and LF) anywhere in a 64-byte window, fields longer than a window, and any delimiter the
options allow (a tab is also one of the bytes the marks flag as a false alarm).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from helpers.parse_outcome import compiled_core, observed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectbatch.parser.api import parse_bytes

WIDE = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DELIMITERS = [",", "|", ";", "\t", "\x01"]


@pytest.fixture(scope="module")
def cython_core() -> ModuleType:
    return compiled_core()


PIECES = [b"a", b"bc", b"12345", b"x" * 70, b"\x00", b"\xc3\xa9", b"\xff", b"\t", b'"', b'""']
PIECES += [b"\r", b"\n", b"\r\n", b" ", b"\x7f", b"\x1f"]


@st.composite
def wide_file(draw: st.DrawFn) -> tuple[bytes, str]:
    delimiter = draw(st.sampled_from(DELIMITERS))
    d = delimiter.encode()
    ncols = draw(st.integers(8, 40))
    header = d.join(b"c%d" % i for i in range(ncols))
    eol = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    lines = []
    for _ in range(draw(st.integers(1, 5))):
        width = draw(st.sampled_from([ncols] * 5 + [ncols - 1, ncols + 1]))
        fields = []
        for _ in range(width):
            kind = draw(st.sampled_from(["empty"] * 4 + ["plain"] * 4 + ["quoted", "noise"]))
            if kind == "empty":
                fields.append(b"")
            elif kind == "plain":
                fields.append(draw(st.sampled_from([b"1", b"abc", b"2026-03-01", b"x" * 66])))
            elif kind == "quoted":
                inner = b"".join(draw(st.lists(st.sampled_from([*PIECES, d]), max_size=4)))
                fields.append(b'"' + inner.replace(b'"', b'""') + b'"')
            else:
                fields.append(b"".join(draw(st.lists(st.sampled_from(PIECES), max_size=3))))
        lines.append(d.join(fields))
    body = eol.join(lines) + draw(st.sampled_from([b"", eol]))
    return header + eol + body, delimiter


@WIDE
@given(file=wide_file())
def test_wide_records_parse_as_the_reference_core_does(
    cython_core: ModuleType, file: tuple[bytes, str]
) -> None:
    data, delimiter = file
    python = observed(lambda: parse_bytes(data, None, delimiter=delimiter, engine="python"))
    cython = observed(lambda: parse_bytes(data, None, delimiter=delimiter, engine="cython"))
    assert cython == python


@WIDE
@given(file=wide_file(), chunk=st.integers(1, 200))
def test_wide_records_fed_in_chunks_parse_as_fed_whole(
    cython_core: ModuleType, file: tuple[bytes, str], chunk: int
) -> None:
    data, delimiter = file
    status, fields, _line, end, next_line = cython_core.read_header(data, ord(delimiter), True)
    if status != cython_core.HEADER_OK:
        return
    from connectbatch.parser import plan as csvplan

    plan = csvplan.raw_plan(csvplan.decode_header(fields, 1), ord(delimiter))

    def run(step: int) -> Any:
        parser = cython_core.Parser(plan, next_line)
        body = data[end:]
        for i in range(0, len(body), step):
            parser.feed(body[i : i + step], False)
        parser.feed(b"", True)
        out = parser.finish()
        return out.rejects, out.lines.to_pylist(), [a.to_pylist() for a in out.arrays]

    assert run(chunk) == run(max(1, len(data)))


@settings(max_examples=300, deadline=None)
@given(data=st.binary(min_size=64, max_size=64), delimiter=st.sampled_from(DELIMITERS))
def test_simd_stop_marks_equal_the_byte_loop(cython_core: ModuleType, data: bytes, delimiter: str) -> None:
    simd, scalar = cython_core.stop_masks(data, ord(delimiter))
    expected = sum(1 << i for i, c in enumerate(data) if c == ord(delimiter) or c < 0x20 or c >= 0x80)
    assert scalar == expected
    if simd is not None:
        assert simd == expected
