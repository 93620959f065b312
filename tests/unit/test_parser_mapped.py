"""A plain file big enough is parsed from a read-only mapping instead of read into buffers
(decode._mapped), when the caller opts in (`parse_file(mapped=True)`, the ingest's staged
copy): the outcome must be that of the same bytes parsed from memory, on one thread and on
several, whatever the chunk size; anything that is not a regular file reads as before. By
default nothing is mapped: a mapped file that another process shortens kills the process
with SIGBUS, so a file a user names (CLI `parse`, a dry run) is always read."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from helpers.bench_files import generated_calls
from helpers.parse_outcome import outcome

from connectbatch.parser import api, blocks, containers
from connectbatch.parser import decode as csvdecode


@pytest.fixture(scope="module")
def bench_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_calls(tmp_path_factory.mktemp("mapped") / "calls.csv", rows=2000, seed=5)


@pytest.fixture
def count_maps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Map every file however small; count the mappings made."""
    made: list[int] = []
    real = csvdecode._mapped

    def mapped(stream: Any, offset: int) -> Any:
        mm = real(stream, offset)
        if mm is not None:
            made.append(len(mm))
        return mm

    monkeypatch.setattr(csvdecode, "MAP_MIN_REST", 1)
    monkeypatch.setattr(csvdecode, "_mapped", mapped)
    return made


@pytest.mark.parametrize("chunk", [1000, 7777, 65536, 1 << 20])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_mapped_file_parses_as_its_bytes_in_memory(
    monkeypatch: pytest.MonkeyPatch, bench_file: Path, count_maps: list[int], chunk: int, threads: int
) -> None:
    expected = outcome(api.parse_bytes, bench_file.read_bytes(), threads=1)
    monkeypatch.setattr(csvdecode, "CHUNK_SIZE", chunk)
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 3000)
    assert outcome(api.parse_file, bench_file, threads=threads, mapped=True) == expected
    if chunk < bench_file.stat().st_size:
        assert count_maps == [bench_file.stat().st_size]
    assert expected[0] != "ParseError" and len(expected[1]) > 1900 and expected[2]


def test_every_chunk_of_a_mapping_is_handed_out_once_in_order(
    monkeypatch: pytest.MonkeyPatch, bench_file: Path
) -> None:
    """Chunks past MAP_LAG unmap the pages of old ones; what was handed out stays readable
    (the mapping shows the file again on the next touch)."""
    monkeypatch.setattr(csvdecode, "CHUNK_SIZE", 5000)
    monkeypatch.setattr(csvdecode, "MAP_MIN_REST", 1)
    data = bench_file.read_bytes()
    with open(bench_file, "rb") as f:
        head = f.read(5000)
        mm = csvdecode._mapped(f, len(head))
        assert mm is not None
        chunks = list(csvdecode._mapped_chunks(mm, len(head)))
        assert head + b"".join(bytes(c) for c in chunks) == data
        assert all(len(c) == 5000 for c in chunks[:-1])


def test_a_file_that_will_be_mapped_reads_only_a_small_head(
    monkeypatch: pytest.MonkeyPatch, bench_file: Path, count_maps: list[int]
) -> None:
    """The head only decides the encoding; the rest comes from the mapping. A file read
    (not mapped, or too small to map) still reads CHUNK_SIZE at once."""
    monkeypatch.setattr(csvdecode, "CHUNK_SIZE", 200_000)
    monkeypatch.setattr(csvdecode, "FIRST_READ", 4096)
    data = bench_file.read_bytes()
    for mapped, head in ((True, 4096), (False, 200_000)):
        with open(bench_file, "rb") as f:
            _enc, chunks = csvdecode.utf8_source(f, None, reuse=True, mapped=mapped)
            pieces = [bytes(c) for c in chunks]
        assert len(pieces[0]) == head and b"".join(pieces) == data
    assert count_maps == [len(data)]
    with open(bench_file, "rb") as f:
        assert csvdecode._mappable(f, 4096)
        monkeypatch.setattr(csvdecode, "MAP_MIN_REST", len(data))
        assert not csvdecode._mappable(f, 4096)  # the rest after the head is under the minimum
    assert not csvdecode._mappable(io.BytesIO(data), 0)


def test_what_is_not_a_regular_file_is_not_mapped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bench_file: Path
) -> None:
    assert csvdecode._mapped(io.BytesIO(bench_file.read_bytes()), 0) is None
    packed = tmp_path / "calls.csv.gz"
    packed.write_bytes(gzip.compress(bench_file.read_bytes()))
    with open(packed, "rb") as raw:
        assert csvdecode._mapped(containers.open_payload(raw), 0) is None
    with open(bench_file, "rb") as f:
        f.read(10)
        assert csvdecode._mapped(f, 10) is None  # the rest is under MAP_MIN_REST
        monkeypatch.setattr(csvdecode, "MAP_MIN_REST", 1)
        assert csvdecode._mapped(f, 0) is None  # not where the head ended: read instead
        assert csvdecode._mapped(f, 10) is not None


@pytest.mark.parametrize("threads", [1, 2])
def test_by_default_a_file_is_read_not_mapped(
    monkeypatch: pytest.MonkeyPatch, bench_file: Path, count_maps: list[int], threads: int
) -> None:
    """Fails on the code that mapped every big plain file: a path a user gives must be read."""
    monkeypatch.setattr(csvdecode, "CHUNK_SIZE", 7777)
    expected = outcome(api.parse_bytes, bench_file.read_bytes(), threads=1)
    assert outcome(api.parse_file, bench_file, threads=threads) == expected
    assert count_maps == []


class _Clock:
    step = ""

    def lap(self, name: str) -> None:
        pass


def test_the_ingest_maps_its_staged_copy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bench_file: Path, count_maps: list[int]
) -> None:
    """The compute half parses the staged file, which is ours: that one may be mapped."""
    from connectbatch.models import Connection, Direction, Method, Methodology
    from connectbatch.pipeline import compute
    from connectbatch.settings import Settings

    monkeypatch.setattr(csvdecode, "CHUNK_SIZE", 7777)
    staged = tmp_path / "staged.csv"
    staged.write_bytes(bench_file.read_bytes())
    connection = Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    done = compute.compute(Settings(), connection, staged, None, now, _Clock())
    assert done.refusal is None and done.parsed is not None and done.parsed.rows_accepted > 1900
    assert count_maps == [staged.stat().st_size]


_SHORTENED = textwrap.dedent(
    """
    import sys
    from connectbatch.parser import api, decode

    decode.CHUNK_SIZE = 64 * 1024
    decode.MAP_MIN_REST = 1
    path, mapped = sys.argv[1], sys.argv[2] == "mapped"
    cut = []

    def shorten(seen: int, rows: int) -> None:  # another process truncates the file mid-parse
        if not cut:
            cut.append(seen)
            with open(path, "r+b") as f:
                f.truncate(256 * 1024)

    r = api.parse_file(path, threads=1, progress=shorten, mapped=mapped)
    print("parsed", r.rows_accepted)
    """
)


@pytest.mark.parametrize("mapped", [False, True])
def test_a_file_shortened_while_parsed_does_not_kill_a_reading_parse(
    tmp_path: Path, bench_file: Path, mapped: bool
) -> None:
    """Why mapping is opt-in: a mapped file shortened under the parser kills the process
    (SIGBUS), a read one just ends early. In a child process, so the crash is not ours.
    The unmapped case fails on the code that mapped every big plain file."""
    victim = tmp_path / "victim.csv"
    victim.write_bytes(bench_file.read_bytes() * 4)
    assert victim.stat().st_size > 1024 * 1024
    child = subprocess.run(
        [sys.executable, "-c", _SHORTENED, str(victim), "mapped" if mapped else "read"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if mapped:
        assert child.returncode == -signal.SIGBUS
    else:
        assert child.returncode == 0, child.stderr
        assert child.stdout.startswith("parsed ")
