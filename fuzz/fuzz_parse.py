"""Atheris fuzz target for `connectbatch.parser.api.parse_bytes` on the compiled core.

    python fuzz/fuzz_parse.py -max_total_time=60 fuzz-artifacts/corpus

Every input is parsed in raw mode and as call conversions (plus once more with a delimiter,
encoding and time zone picked from the input's length). The only exceptions allowed out
are ParseError and ConfigurationError; anything else, a crash or a hang is a finding.
With CONNECTBATCH_FUZZ_PARITY=1 the reference core must also agree on every input. A
parse on two threads, in blocks of a few bytes (a cut at nearly every line, every block
through the threads' queue), must equal the one-thread parse of every input.
Seeds: every file under ../shared/corpora is passed to libFuzzer as a read-only corpus.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import atheris

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO.parent / "shared" / "corpora"
sys.path.insert(0, str(REPO))  # fuzz the working tree, installed or not

with atheris.instrument_imports(include=["connectbatch"]):
    from connectbatch.errors import ConfigurationError, ParseError
    from connectbatch.parser import blocks
    from connectbatch.parser.api import parse_bytes

blocks.BLOCK_BYTES = 16  # inputs are short: cut them everywhere

PARITY = os.environ.get("CONNECTBATCH_FUZZ_PARITY", "") not in ("", "0")
VARIANTS = [
    {"delimiter": "|"},
    {"delimiter": ";", "encoding": "latin-1"},
    {"delimiter": "\t", "encoding": "cp1252"},
    {"encoding": "utf-16-le", "timezone": "America/New_York"},
    {"timezone": "Asia/Kolkata"},
]


def _run(
    data: bytes, data_type: str | None, options: dict[str, str], engine: str, threads: int = 1
) -> tuple[object, ...]:
    try:
        r = parse_bytes(data, data_type, engine=engine, threads=threads, **options)  # type: ignore[arg-type]
    except (ParseError, ConfigurationError) as exc:
        return ("error", type(exc).__name__, str(exc))
    table = r.table
    return (
        "ok",
        table.schema,
        table.to_pylist(),
        r.rejects,
        r.unknown_columns,
        r.lines.to_pylist(),
    )


def _parse(data: bytes, data_type: str | None, options: dict[str, str]) -> None:
    compiled = _run(data, data_type, options, "cython")
    threaded = _run(data, data_type, options, "cython", threads=2)
    if threaded != compiled:
        raise AssertionError(f"threads change the result\none: {compiled!r}\ntwo: {threaded!r}")
    if PARITY:
        reference = _run(data, data_type, options, "python")
        if compiled != reference:
            raise AssertionError(f"cores disagree\ncython: {compiled!r}\npython: {reference!r}")


def TestOneInput(data: bytes) -> None:  # the name atheris and libFuzzer expect
    options = VARIANTS[len(data) % len(VARIANTS)]
    _parse(data, None, {})
    _parse(data, "call_conversions", {})
    _parse(data, "call_conversions" if len(data) % 2 else None, options)


def main(argv: list[str]) -> None:
    args = list(argv)
    flags = [a for a in args[1:] if a.startswith("-")]
    if not any(a.startswith("-max_len=") for a in flags):
        args.append("-max_len=8192")  # corpus e-mails are large; keep executions fast
    if not any(a.startswith("-artifact_prefix=") for a in flags):
        (REPO / "fuzz-artifacts").mkdir(exist_ok=True)
        args.append(f"-artifact_prefix={REPO / 'fuzz-artifacts'}/")
    inputs = [a for a in argv[1:] if not a.startswith("-")]
    if not inputs:  # libFuzzer writes new inputs into the first corpus directory
        inputs = [str(REPO / "fuzz-artifacts" / "corpus")]
        args.append(inputs[0])
    if not Path(inputs[0]).exists():
        Path(inputs[0]).mkdir(parents=True)
    if SEEDS.is_dir() and all(Path(i).is_dir() for i in inputs):  # not when replaying files
        args.append(str(SEEDS))
    atheris.Setup(args, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
