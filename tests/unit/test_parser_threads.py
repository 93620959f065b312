"""A parse on several threads gives exactly the result of a parse on one.

The file is cut into blocks at guessed record boundaries (connectbatch.parser.blocks); tiny
blocks here put cuts everywhere: inside quoted newlines, next to CRLF, after stray quotes that
make the guess wrong. Equal means the same table, the same rejects with the same line
numbers, the same keys of rejected records, the same header and encoding.
"""

from __future__ import annotations

import codecs
import random
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from helpers.bench_files import generated_calls
from helpers.parse_outcome import outcome
from helpers.shared import shared_files

from connectbatch import _csvcore, schemas
from connectbatch import settings as settings_module
from connectbatch.errors import ConfigurationError, ParseError
from connectbatch.parser import api, blocks
from connectbatch.parser import decode as csvdecode
from connectbatch.parser import plan as csvplan

REPO = Path(__file__).resolve().parents[2]
HEADER = (
    "CampaignId,MediaId,EventDate,ActionTrackerId,CallProvider,CallSessionId,CallerId,"
    "CalledPhoneNumber,CallDuration,TalkDuration,SaleAmount"
)


@pytest.fixture(scope="module")
def bench_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file from the benchmark's generator: every column style, 0.5 % broken rows."""
    return generated_calls(tmp_path_factory.mktemp("threads") / "calls.csv", rows=3000, seed=11)


def same_on_threads(monkeypatch: pytest.MonkeyPatch, parse: Any, *args: Any, sizes: tuple[int, ...] = (),
                    threads: tuple[int, ...] = (2, 3), **kw: Any) -> tuple[Any, ...]:  # fmt: skip
    """Assert that every block size and thread count gives the one-thread outcome; return it."""
    one = outcome(parse, *args, threads=1, **kw)
    for size in sizes:
        monkeypatch.setattr(blocks, "BLOCK_BYTES", size)
        for n in threads:
            assert outcome(parse, *args, threads=n, **kw) == one, (size, n)
    return one


# ------------------------------------------------------------------ the bench generator's file


def test_bench_file_parses_the_same_on_two_threads(monkeypatch: pytest.MonkeyPatch, bench_file: Path) -> None:
    one = same_on_threads(monkeypatch, api.parse_file, bench_file, sizes=(997, 4096, 65536, 1 << 22))
    assert one[0] != "ParseError" and len(one[1]) > 2900 and one[2]  # rows and rejects


def test_bench_file_in_small_read_chunks(monkeypatch: pytest.MonkeyPatch, bench_file: Path) -> None:
    """Chunks smaller and larger than blocks: tails of chunks are joined to the next one."""
    for chunk in (1000, 7777, 50000):
        monkeypatch.setattr(csvdecode, "CHUNK_SIZE", chunk)
        same_on_threads(monkeypatch, api.parse_file, bench_file, sizes=(3000, 20000))


def test_bench_file_in_a_time_zone(monkeypatch: pytest.MonkeyPatch, bench_file: Path) -> None:
    """Offset-less times are moved from the connection's zone over chunked columns."""
    same_on_threads(monkeypatch, api.parse_file, bench_file, sizes=(5000,), timezone="America/New_York")


def test_bench_file_as_bytes_and_as_raw_columns(monkeypatch: pytest.MonkeyPatch, bench_file: Path) -> None:
    data = bench_file.read_bytes()
    same_on_threads(monkeypatch, api.parse_bytes, data, sizes=(2048, 30000))
    same_on_threads(monkeypatch, api.parse_bytes, data, None, sizes=(2048,))


# ------------------------------------------------------------------ corpora


@pytest.mark.parametrize("path", shared_files("corpora", "*.csv", recursive=True))
def test_corpus_file_parses_the_same_on_threads(
    monkeypatch: pytest.MonkeyPatch, corpora: Path, path: Path
) -> None:
    same_on_threads(monkeypatch, api.parse_file, path, None, sizes=(1, 7, 64))


# ------------------------------------------------------------------ quotes across cuts


def messy(seed: int, rows: int) -> bytes:
    """Records with quoted newlines (LF, CR, CRLF), doubled quotes, blank lines, short rows,
    stray quotes inside unquoted fields, junk after a closing quote, mixed line ends."""
    rng = random.Random(seed)
    pieces = ["a", "b c", '"x\ny"', '"p""q"', '"r\r\ns"', '"t\ru"', "", 'a"b', '"q"junk', "é", '""']
    ends = ["\n", "\r\n", "\r", "\n\n", "\r\n\r\n"]
    out = ["h1,h2,h3\n"]
    for _ in range(rows):
        width = rng.choice([3, 3, 3, 3, 2, 4])
        out.append(",".join(rng.choice(pieces) for _ in range(width)) + rng.choice(ends))
    if rng.random() < 0.3:
        out.append('"open,never closed\n')
    return "".join(out).encode()


@pytest.mark.parametrize("seed", range(40))
def test_messy_records_across_every_cut(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    same_on_threads(monkeypatch, api.parse_bytes, messy(seed, 60), None, sizes=(1, 2, 3, 5, 8, 13, 40))


def test_typed_rejects_keep_their_line_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [HEADER]
    for i in range(200):
        amount = "oops" if i % 17 == 0 else f"{i}.50"
        day = f"2026-01-0{1 + i % 9}T10:00:00Z"
        record = f'1,2,{day},3,"Invoca\nInc",S{i},+15551234567,+18005550100,{i},{i},{amount}'
        rows.append(record if i % 23 else record + "\n")  # blank lines shift the count
    data = ("\n".join(rows) + "\n").encode()
    one = same_on_threads(monkeypatch, api.parse_bytes, data, sizes=(50, 333, 1000))
    lines = [r.line for r in one[2]]
    assert lines[:2] == [2, 37] and len(lines) == 12  # two lines a record, a blank line after 0
    assert one[4]  # the rejected records' CallSessionIds


def test_a_stray_quote_never_changes_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """One quote inside an unquoted field turns every later guess wrong (an odd count):
    the parse falls back to one parser from the first wrong cut."""
    body = "".join(f'row{i},x"y,{i}\n' if i == 3 else f'row{i},"q\nq",{i}\n' for i in range(300))
    same_on_threads(monkeypatch, api.parse_bytes, ("a,b,c\n" + body).encode(), None, sizes=(10, 100, 1000))


# ------------------------------------------------------------------ encodings, limits, progress


@pytest.mark.parametrize(
    ("prefix", "codec", "encoding"),
    [
        (codecs.BOM_UTF8, "utf-8", None),
        (codecs.BOM_UTF16_LE, "utf-16-le", None),
        (codecs.BOM_UTF16_BE, "utf-16-be", None),
        (b"", "latin-1", "latin-1"),
    ],
)
def test_encodings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefix: bytes, codec: str,
                   encoding: str | None) -> None:  # fmt: skip
    text = "h1,h2\n" + "".join(f'caf\u00e9 {i},"x\n{i}"\n' for i in range(400))
    path = tmp_path / "f.csv"
    path.write_bytes(prefix + text.encode(codec))
    monkeypatch.setattr(csvdecode, "CHUNK_SIZE", 1500)
    one = same_on_threads(monkeypatch, api.parse_file, path, None, sizes=(100, 999), encoding=encoding)
    assert len(one[1]) == 400 and one[1][0]["h1"] == "caf\u00e9 0"
    same_on_threads(monkeypatch, api.parse_bytes, path.read_bytes(), None, sizes=(100,), encoding=encoding)


def test_max_bytes_is_the_same_limit(monkeypatch: pytest.MonkeyPatch, bench_file: Path) -> None:
    one = same_on_threads(monkeypatch, api.parse_file, bench_file, sizes=(4096,), max_bytes=100_000)
    assert one[0] == "ParseError" and "100,000" in one[1]


def test_progress_reports_bytes_and_rows_up_to_the_one_thread_totals(
    monkeypatch: pytest.MonkeyPatch, bench_file: Path
) -> None:
    def calls(threads: int) -> list[tuple[int, int]]:
        seen: list[tuple[int, int]] = []
        api.parse_file(bench_file, threads=threads, progress=lambda done, rows: seen.append((done, rows)))
        return seen

    monkeypatch.setattr(blocks, "BLOCK_BYTES", 50_000)
    one, two = calls(1), calls(2)
    assert two[-1] == one[-1]
    assert len(two) > 5 and two == sorted(two)


def test_a_column_over_the_text_limit_is_refused_as_on_one_thread(
    monkeypatch: pytest.MonkeyPatch, bench_file: Path
) -> None:
    """The one-thread core refuses a text column over 2 GiB (Arrow's int32 offsets); the
    blocks of a threaded parse are each smaller, so their sum is checked (limit lowered)."""
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 50_000)
    monkeypatch.setattr(blocks, "MAX_TEXT", 10_000)
    with pytest.raises(ParseError, match="more than 2 GiB of text"):
        api.parse_file(bench_file, threads=2)


def test_chunked_columns_hold_the_blocks(monkeypatch: pytest.MonkeyPatch, bench_file: Path) -> None:
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 50_000)
    r = api.parse_file(bench_file, threads=2)
    assert r.table.column(0).num_chunks > 1 and isinstance(r.lines, pa.Array)


# ------------------------------------------------------------------ the cut helpers


def test_cut_block_finds_the_last_lf_after_an_even_number_of_quotes() -> None:
    assert _csvcore.cut_block(b'a,b\nc,"d\ne"\nx') == 12
    assert _csvcore.cut_block(b'a,"b\nc') == 0
    assert _csvcore.cut_block(b'"' * 9 + b"\n" + b"x" * 20) == 0
    assert _csvcore.cut_block(b'"' * 16 + b"\n" + b"x" * 20) == 17
    assert _csvcore.cut_block(b"") == 0


def test_cut_first_and_quote_parity() -> None:
    assert _csvcore.cut_first(b'x\ny"\nz', 0) == 2
    assert _csvcore.cut_first(b'x\ny"\nz', 1) == 5  # a quoted field opened before
    assert _csvcore.cut_first(b'x"\ny\nz', 0) == 0
    assert _csvcore.cut_first(b"xyz", 0) == 0
    assert _csvcore.quote_parity(b'""' * 13 + b'"') == 1
    assert _csvcore.quote_parity(b'x"' * 40) == 0 and _csvcore.quote_parity(b"") == 0
    rng = random.Random(5)
    for n in range(300):  # every length around the 64-, 16- and 8-byte steps
        data = bytes(rng.choice(b'ab"\n\xe9') for _ in range(n))
        assert _csvcore.quote_parity(data) == data.count(b'"') % 2, data


def test_joined_lines_puts_the_blocks_line_numbers_together_in_one_array() -> None:
    """The lines of a threaded parse: rows of each block's array, each moved by its base."""
    a = pa.array([0, 1, 3, 7], pa.int64())
    b = pa.array([10, 0, 2], pa.int64()).slice(1)  # an offset into the buffer is honoured
    joined = _csvcore.joined_lines([(a, 1, 2, 100), (b, 0, 0, 5), (b, 0, 2, 1_000), (a, 0, 1, 0)])
    assert joined.type == pa.int64() and joined.to_pylist() == [101, 103, 1_000, 1_002, 0]
    assert _csvcore.joined_lines([]).to_pylist() == []
    for bad in [(a, 3, 2, 0), (a, -1, 1, 0), (a, 0, -1, 0), (pa.array([1, None], pa.int64()), 0, 1, 0)]:
        with pytest.raises(ValueError):
            _csvcore.joined_lines([bad])


def test_cut_window_counts_the_quotes_before_the_window() -> None:
    """A window of the threaded parse starts anywhere (inside a quoted field too): its cut is
    the last LF after an even number of quotes counting those before it; 0 when none."""
    assert _csvcore.cut_window(b'a,b\nc,"d\ne"\nx', 0) == (12, 0)
    assert _csvcore.cut_window(b'a,b\nc,"d\ne"\nx', 1) == (9, 1)  # a field opened before closes at c,"
    assert _csvcore.cut_window(b'a,"b\nc', 0) == (0, 1)
    assert _csvcore.cut_window(b"", 1) == (0, 1)
    rng = random.Random(7)
    for n in range(300):
        data = bytes(rng.choice(b'ab"\n') for _ in range(n))
        for before in (0, 1):
            cuts = [k + 1 for k in range(n) if data[k] == 10 and (before + data[:k].count(b'"')) % 2 == 0]
            want = (cuts[-1] if cuts else 0, (before + data.count(b'"')) % 2)
            assert _csvcore.cut_window(data, before) == want, (data, before)


# ------------------------------------------------------------------ the setting


def test_parse_threads_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONNECTBATCH_PARSE_THREADS", raising=False)
    assert settings_module.parse_threads() == settings_module.cores() >= 1
    monkeypatch.setenv("CONNECTBATCH_PARSE_THREADS", "3")
    assert settings_module.parse_threads() == 3
    monkeypatch.setenv("CONNECTBATCH_PARSE_THREADS", "0")
    with pytest.raises(ConfigurationError, match="CONNECTBATCH_PARSE_THREADS"):
        settings_module.parse_threads()


def test_the_setting_reaches_the_parser(monkeypatch: pytest.MonkeyPatch, bench_file: Path) -> None:
    used: list[int] = []
    real = blocks.parse_threaded

    def spy(*args: Any, **kw: Any) -> Any:
        used.append(args[5])
        return real(*args, **kw)

    monkeypatch.setattr(blocks, "parse_threaded", spy)
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 1024)  # the file is several blocks
    monkeypatch.setenv("CONNECTBATCH_PARSE_THREADS", "1")
    api.parse_file(bench_file)
    monkeypatch.setenv("CONNECTBATCH_PARSE_THREADS", "3")
    api.parse_file(bench_file)
    assert used == [3]


def test_a_body_within_one_block_is_parsed_without_threads(
    monkeypatch: pytest.MonkeyPatch, bench_file: Path
) -> None:
    """One window would go to one parser anyway: no crew, no pool (0.2 ms of a small file)."""
    used: list[int] = []
    monkeypatch.setattr(blocks, "parse_threaded", lambda *a, **k: used.append(1))
    assert bench_file.stat().st_size < blocks.BLOCK_BYTES
    threaded = api.parse_file(bench_file, threads=3)
    assert used == []
    assert threaded.table.equals(api.parse_file(bench_file, threads=1).table)


# ------------------------------------------------------------------ carried records (feed)


def fed(body: bytes, step: int) -> tuple[Any, ...]:
    """The core's output for `body` fed in chunks of `step` bytes (header a,b,c)."""
    _status, fields, line, _end, next_line = _csvcore.read_header(b"a,b,c\n", ord(","), True)
    plan = csvplan.raw_plan(csvplan.decode_header(fields, line), ord(","))
    parser = _csvcore.Parser(plan, next_line)
    view = memoryview(body)
    for i in range(0, len(body), step):
        parser.feed(view[i : i + step] if i % 2 else bytes(view[i : i + step]), False)
    parser.feed(b"", True)
    out = parser.finish()
    return [a.to_pylist() for a in out.arrays], out.lines.to_pylist(), out.rejects


def sized(body: bytes, step: int, expect: int) -> tuple[Any, ...]:
    """fed() with the parser told to expect `expect` bytes (typed columns as well as text)."""
    head = b"CallSessionId,CallDuration,EventDate,SaleAmount,CampaignId,MediaId,ActionTrackerId,"
    head += b"CallProvider,CallerId,CalledPhoneNumber,TalkDuration\n"
    _status, fields, line, _end, next_line = _csvcore.read_header(head, ord(","), True)
    header = csvplan.decode_header(fields, line)
    plan = csvplan.typed_plan(header, schemas.get("call_conversions"), ord(","), None, line)
    parser = _csvcore.Parser(plan, next_line, expect)
    for i in range(0, len(body), step):
        parser.feed(body[i : i + step], False)
    parser.feed(b"", True)
    out = parser.finish()
    return [a.to_pylist() for a in out.arrays], out.lines.to_pylist(), out.rejects, out.reject_keys


def test_the_expected_size_changes_how_buffers_grow_not_what_they_hold() -> None:
    """The size hint makes the buffers grow to an estimate of the whole input (in a few
    large steps): right, too small, far too large or absent, the output is the same, across
    rejected records (written speculatively, then dropped) and chunk borders."""
    rng = random.Random(11)
    rows = []
    for i in range(60_000):
        text = "x" * rng.choice([0, 3, 40, 300]) if i < 30_000 else "y" * rng.choice([0, 2000])
        seconds = rng.choice(["12", "", "-1", "x"]) if i % 97 == 0 else str(i)
        rows.append(f"c{i}{text},{seconds},2026-03-01T10:00:00Z,{i}.50,1,2,3,Invoca,+1,+2,{i % 50}\n")
    body = "".join(rows).encode()
    want = sized(body, 1 << 20, 0)
    assert len(want[0][0]) > 59_000 and want[2]
    for expect in (len(body), len(body) // 10, len(body) * 1000, 2**62, 1):
        for step in (1 << 20, 300_000):
            assert sized(body, step, expect) == want, (expect, step)


@pytest.mark.parametrize("step", [1000, 65535, 65536, 70_000, 150_000, 300_000, 10**7])
def test_a_record_carried_over_a_chunk_border_is_finished_on_a_prefix(step: int) -> None:
    """feed() completes the carried record on a growing prefix of the next chunk instead of
    copying the whole chunk: long records (past the first 64 KiB prefix), quoted newlines,
    CR at a border, a quote never closed at the end; every chunking gives the same output."""
    rng = random.Random(step)
    rows = []
    for i in range(3000):
        long = rng.random() < 0.01
        big = '"' + ("x\n" * rng.randint(30_000, 120_000)) + '"' if long else f'"q\r\n{i}"'
        rows.append(f"{i},{big},z{i}" + rng.choice(["\n", "\r\n", "\r"]))
    body = ("".join(rows) + '1,"never closed,\n').encode()
    assert fed(body, step) == fed(body, len(body))


def test_a_file_without_cuts_is_read_streaming_on_one_parser(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """CR-only line ends leave no LF to cut at: the rest is read on one parser, chunk by
    chunk through the reused buffers, never held in memory whole (a list of every chunk
    once did that). tracemalloc sees the read buffers (the columns are C memory)."""
    import tracemalloc

    path = tmp_path / "cr.csv"
    path.write_bytes(b"a,b\r" + b"".join(b"%d,x%d\r" % (i, i) for i in range(300_000)))
    monkeypatch.setattr(csvdecode, "CHUNK_SIZE", 64 * 1024)
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 16 * 1024)
    one = outcome(api.parse_file, path, None, threads=1)
    tracemalloc.start()
    try:
        result = api.parse_file(path, None, threads=2)
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome(lambda: result) == one
    assert path.stat().st_size > 3_000_000 and peak < 1_000_000


def test_validation_judges_the_chunked_table_as_the_one_chunk_table(
    monkeypatch: pytest.MonkeyPatch, bench_file: Path
) -> None:
    """A threaded parse hands on columns of many chunks: the columnar evaluator (and the
    failing rows' line numbers it reports) must not care."""
    from dataclasses import asdict
    from datetime import UTC, datetime

    from connectbatch.pipeline.validation import validate

    monkeypatch.setattr(blocks, "BLOCK_BYTES", 50_000)
    reports = []
    for threads in (1, 2):
        parsed = api.parse_file(bench_file, "call_conversions", threads=threads)
        report = validate(
            parsed.table, "call_conversions", now=datetime(2026, 2, 1, tzinfo=UTC), lines=parsed.lines,
            rows_rejected=parsed.rows_rejected, engine="columnar",
        )  # fmt: skip
        data = asdict(report)
        data.pop("raw")
        reports.append((parsed.table.column(0).num_chunks, data))
    (one_chunks, one), (two_chunks, two) = reports
    assert one_chunks == 1 and two_chunks > 1
    assert two == one and any(o["unexpected_lines"] for o in two["outcomes"])


def test_a_threaded_parse_does_not_import_pandas(bench_file: Path) -> None:
    """Renumbering lines with Arrow compute converted a Python int, and pyarrow imports
    pandas for that: ~0.2 s on the first threaded parse of a process (as in make bench)."""
    import subprocess

    code = (
        "import sys\n"
        "from connectbatch.parser import api, blocks\n"
        "blocks.BLOCK_BYTES = 50_000\n"
        f"r = api.parse_file({str(bench_file)!r}, threads=2)\n"
        "assert r.table.column(0).num_chunks > 1\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------ the shared queue of blocks


def test_every_block_on_the_pool_parses_as_one_thread(
    monkeypatch: pytest.MonkeyPatch, bench_file: Path
) -> None:
    """Every block goes to the threads, which take them from one queue on whichever parser
    is free: many blocks per parser, in any order, and (stray quote) wrong cuts leaving a
    parser with a record carried over."""
    sizes = (997, 4096, 20000)
    one = same_on_threads(monkeypatch, api.parse_file, bench_file, sizes=sizes, threads=(2, 3, 4))
    assert one[0] != "ParseError" and len(one[1]) > 2900 and one[2]
    body = "".join(f'row{i},x"y,{i}\n' if i == 3 else f'row{i},"q\nq",{i}\n' for i in range(300))
    data = ("a,b,c\n" + body).encode()
    same_on_threads(monkeypatch, api.parse_bytes, data, None, sizes=(10, 100, 1000), threads=(2, 3, 4))
    body = "".join(f'row{i},x"y,{i}\n' if i == 250 else f"row{i},q,{i}\n" for i in range(400))
    data = ("a,b,c\n" + body).encode()
    same_on_threads(monkeypatch, api.parse_bytes, data, None, sizes=(10, 100, 1000), threads=(2, 3, 4))


def test_a_parser_left_mid_record_is_not_lent_again() -> None:
    """A block that did not end on a record boundary leaves its parser with a carried-over
    record; a thread may then take an *earlier* block of the file, which must get a clean
    parser (the lent one would refuse begin_block, or worse). Fails when it is lent again."""
    _status, fields, line, _end, _next = _csvcore.read_header(b"a,b,c\n", ord(","), True)
    plan = csvplan.raw_plan(csvplan.decode_header(fields, line), ord(","))
    crew = blocks._Crew(_csvcore, plan)
    bad, done = crew.run(b'1,"open\n2,x,y\n', False)
    assert done.pending
    good, done = crew.run(b"3,p,q\n4,r,s\n", False)
    assert good != bad and not done.pending and done.end_row - done.first_row == 2
    again, _ = crew.run(b"5,t,u\n", False)
    assert again == good  # a clean parser is lent again
    out = crew.parsers[good].finish()
    assert [a.to_pylist() for a in out.arrays] == [["3", "4", "5"], ["p", "r", "t"], ["q", "s", "u"]]


def test_a_read_error_mid_body_is_raised_in_turn_from_the_workers() -> None:
    """The workers take the chunks themselves (the reads and unmapping leave the calling
    thread): an error reading one is still raised to the caller, after the blocks before
    it and instead of a silently shorter result, also when a wrong cut (stray quote) has
    sent the rest to one parser."""
    _status, fields, line, _end, _next = _csvcore.read_header(b"a,b,c\n", ord(","), True)
    plan = csvplan.raw_plan(csvplan.decode_header(fields, line), ord(","))

    def chunks(stray: bool) -> Any:
        for k in range(6):
            yield b"".join(b'%d,x"y,%d\n' % (k, i) if stray and k == 1 and i == 3 else b"%d,y,%d\n" % (k, i)
                           for i in range(100))  # fmt: skip
        raise OSError("disk gone")

    for stray in (False, True):
        with pytest.raises(OSError, match="disk gone"):
            blocks.parse_threaded(_csvcore, plan, 2, b"", chunks(stray), 2, None, block_bytes=200)
