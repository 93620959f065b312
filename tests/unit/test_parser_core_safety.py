"""The compiled core's constructor and hand-over fail cleanly on bad input.

A crash in C kills the whole worker, so each case runs in a child process: the child must
exit normally having seen the Python exception, never a segfault or a double free.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("connectbatch._csvcore", reason="the compiled core is not built; run `make build`")


def _run_child(body: str) -> subprocess.CompletedProcess[str]:
    code = "import types\nfrom connectbatch import _csvcore\n" + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def _assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.strip().endswith("clean"), result.stdout


def test_constructor_failing_after_allocating_columns_frees_nothing_uninitialised() -> None:
    """`field_slot` claims 2**60 entries: its allocation fails after `cols` was allocated.
    Before the fix `__dealloc__` then freed the uninitialised column pointers (SIGSEGV).
    Freed heap blocks full of 0xAB make such garbage pointers likely."""
    result = _run_child(
        """
        class Huge:
            def __len__(self):
                return 2**60

            def __getitem__(self, i):
                return 0

        for ncols in (1, 100, 1000, 1300):
            for _ in range(20):
                junk = [bytes([0xAB]) * (ncols * 128 + 64) for _ in range(8)]
                del junk[::2]
                plan = types.SimpleNamespace(
                    delimiter=44, key_slot=-1, field_slot=Huge(), slots=[None] * ncols
                )
                try:
                    _csvcore.Parser(plan, 2)
                except MemoryError:
                    continue
                raise SystemExit("no MemoryError")
        print("clean")
        """
    )
    _assert_clean(result)


@pytest.mark.parametrize(
    ("plan", "error"),
    [
        ("delimiter=1000, field_slot=(0,), slots=(good,)", "ValueError"),
        ("delimiter=-1, field_slot=(0,), slots=(good,)", "ValueError"),
        ("delimiter=34, field_slot=(0,), slots=(good,)", "ValueError"),
        ("delimiter=44, field_slot=(5,), slots=(good,)", "ValueError"),
        ("delimiter=44, field_slot=(0, 1), slots=(good, bad_kind)", "ValueError"),
        ("delimiter=44, field_slot=(0, 1), slots=(good, None)", "AttributeError"),
        ("delimiter=None, field_slot=(0,), slots=(good,)", "TypeError"),
        ("delimiter=44, field_slot=(0, 1), slots=(good, bad_default)", "TypeError"),
        # the key and its qualifier are read from a text column's offsets: a slot out of
        # range, or one of numbers, would read outside the buffers
        ("delimiter=44, key_slot=5, field_slot=(0,), slots=(good,)", "ValueError"),
        ("delimiter=44, qualifier_slot=1, field_slot=(0, 1), slots=(good, number)", "ValueError"),
        ("delimiter=44, qualifier_slot=-3, field_slot=(0,), slots=(good,)", "ValueError"),
    ],
)
def test_bad_plans_raise_instead_of_corrupting_memory(plan: str, error: str) -> None:
    result = _run_child(
        f"""
        from connectbatch.parser.plan import CoreKind, Slot

        good = Slot("a", CoreKind.ENUM, False, b"X", (b"X", b"Y"))
        bad_kind = Slot("b", 99, False, None)
        bad_default = Slot("c", CoreKind.STRING, False, "not bytes")
        number = Slot("d", CoreKind.INTEGER, False, None)
        fields = {{"key_slot": -1, "qualifier_slot": -1, **dict({plan})}}
        for _ in range(50):
            try:
                _csvcore.Parser(types.SimpleNamespace(**fields), 2)
            except {error}:
                continue
            raise SystemExit("no {error}")
        print("clean")
        """
    )
    _assert_clean(result)


def test_finish_twice_is_refused_not_a_crash() -> None:
    result = _run_child(
        """
        from connectbatch.parser.plan import raw_plan

        parser = _csvcore.Parser(raw_plan(["a", "b"], 44), 2)
        parser.feed(b"1,2\\n3,4\\n", True)
        out = parser.finish()
        assert out.arrays[0].to_pylist() == ["1", "3"]
        try:
            parser.finish()
        except RuntimeError:
            pass
        else:
            raise SystemExit("second finish() accepted")
        try:
            parser.feed(b"5,6\\n", True)
        except RuntimeError:
            pass
        else:
            raise SystemExit("feed() after finish() accepted")
        print("clean")
        """
    )
    _assert_clean(result)


def test_read_header_refuses_a_delimiter_outside_the_byte_tables() -> None:
    result = _run_child(
        """
        for delimiter in (-5, 256, 10**6):
            try:
                _csvcore.read_header(b"a,b\\n", delimiter, True)
            except ValueError:
                continue
            raise SystemExit("accepted")
        assert _csvcore.read_header(b"a,b\\n", 44, True)[1] == [b"a", b"b"]
        print("clean")
        """
    )
    _assert_clean(result)
