"""A file parsed as bounded batches (connectbatch.parser.batches) gives, put together, exactly
what `parse_file` gives: the same table, lines, rejects (in the same order), keys of rejected
records, header and encoding. Tiny batches put a batch border everywhere: inside quoted
newlines, next to CRLF, after stray quotes that make the guessed cut wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from helpers.bench_files import generated_calls
from helpers.parse_outcome import outcome
from helpers.shared import shared_files

from connectbatch.parser import api, batches, blocks
from connectbatch.parser import decode as csvdecode
from connectbatch.parser.options import ParseOptions


@pytest.fixture(scope="module")
def bench_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file from the benchmark's generator: every column style, 0.5 % broken rows."""
    return generated_calls(tmp_path_factory.mktemp("batches") / "calls.csv", rows=3000, seed=7)


def batched(path: Path, data_type: str, batch_bytes: int, **kw: Any) -> api.ParseResult:
    """The batches of one streamed parse put together as one ParseResult (at least two
    batches whenever the body is bigger than `batch_bytes`)."""
    options = ParseOptions(**kw)
    got = list(batches.parse_file_batches(path, data_type, options=options, batch_bytes=batch_bytes))
    assert got, "a parse yields at least one batch"
    first = got[0].parsed
    return api.ParseResult(
        pa.concat_tables([b.parsed.table for b in got]),
        [r for b in got for r in b.parsed.rejects] + [r for b in got for r in b.outside],
        first.unknown_columns,
        pa.concat_arrays([b.parsed.lines for b in got]),
        first.encoding,
        first.header,
        {k: v for b in got for k, v in b.parsed.reject_keys.items()},
        first.preamble,
        {k: v for b in got for k, v in b.parsed.reject_qualifiers.items()},
    )


def same_in_batches(
    path: Path, data_type: str | None = "call_conversions", sizes: tuple[int, ...] = (), **kw: Any
) -> Any:
    whole = outcome(api.parse_file, path, data_type, **kw)
    for size in sizes:
        assert outcome(batched, path, data_type, size, **kw) == whole, size
    return whole


def test_bench_file_in_batches_of_every_size(bench_file: Path) -> None:
    whole = same_in_batches(bench_file, sizes=(997, 4096, 65536, 1 << 22))
    assert len(whole[1]) > 2900 and whole[2]  # rows and rejects


def test_more_than_one_batch_and_progress(bench_file: Path) -> None:
    got = list(batches.parse_file_batches(bench_file, "call_conversions", batch_bytes=50_000))
    assert len(got) > 10
    assert [b.rows for b in got] == sorted(b.rows for b in got)
    assert got[-1].rows == api.parse_file(bench_file).rows_accepted


def test_batches_over_small_windows_and_chunks(monkeypatch: pytest.MonkeyPatch, bench_file: Path) -> None:
    """Windows and read chunks smaller and larger than a batch."""
    for chunk, window in ((1000, 333), (7777, 5000), (50000, 1 << 20)):
        monkeypatch.setattr(csvdecode, "CHUNK_SIZE", chunk)
        monkeypatch.setattr(blocks, "BLOCK_BYTES", window)
        same_in_batches(bench_file, sizes=(3000, 20000))


HEADER = (
    "CampaignId,MediaId,EventDate,ActionTrackerId,CallProvider,CallSessionId,CallerId,"
    "CalledPhoneNumber,CallDuration,TalkDuration,SaleAmount"
)


def test_times_outside_utc_come_after_every_other_reject(tmp_path: Path) -> None:
    """A whole parse lists the out-of-range rejects last: so do the batches put together."""
    rows = [HEADER]
    for i in range(300):
        day = "0001-01-01T00:30:00" if i % 40 == 5 else "2026-01-02T10:00:00"
        amount = "oops" if i % 25 == 0 else f"{i}.50"
        rows.append(f"1,2,{day},3,Invoca,S{i},+15551234567,+18005550100,{i},{i},{amount}")
    path = tmp_path / "early.csv"
    path.write_text("\n".join(rows) + "\n")
    whole = same_in_batches(path, sizes=(500, 5000), timezone="Asia/Tokyo")
    reasons = [r.reason for r in whole[2]]
    assert "before year 1" in reasons[-1] and "before year 1" not in reasons[0]


def test_times_outside_utc_come_last_beside_a_record_that_ran_on(tmp_path: Path) -> None:
    """A record a stray quote ran on into the next is refused in line order (run_on.refuse
    sorts the rejects): the whole parse sorted the out-of-range time among them too, while
    the batches put it last."""
    rows = [
        HEADER.replace("SaleAmount", "City"),
        "1,2,0001-01-01T00:30:00,3,Invoca,S1,+15551234567,+18005550100,1,1,Austin",
        '1,2,2026-01-02T10:00:00,3,Invoca,S2,+15551234567,+18005550100,2,2,"Austin',
        '1,2,2026-01-02T10:00:00,3,Invoca,S3,+15551234567,+18005550100,3,3,Boston"',
        "1,2,2026-01-02T10:00:00,3,Invoca,S4,+15551234567,+18005550100,4,4,Austin",
    ]
    path = tmp_path / "both.csv"
    path.write_text("\n".join(rows) + "\n")
    whole = same_in_batches(path, sizes=(10, 1_000_000), timezone="Asia/Tokyo")
    reasons = [(r.line, r.reason) for r in whole[2]]
    assert [line for line, _ in reasons] == [3, 2]
    assert "closes only on line 4" in reasons[0][1] and "before year 1" in reasons[1][1]


def test_a_stray_quote_makes_a_batch_longer_never_different(tmp_path: Path) -> None:
    body = "".join(f'row{i},x"y,{i}\n' if i == 3 else f'row{i},"q\nq",{i}\n' for i in range(300))
    path = tmp_path / "stray.csv"
    path.write_bytes(("a,b,c\n" + body).encode())
    for size in (10, 100, 1000):
        assert outcome(batched, path, None, size) == outcome(api.parse_file, path, None)


def test_header_errors_as_a_whole_parse(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert outcome(batched, path, "call_conversions", 10) == outcome(api.parse_file, path, "call_conversions")


def test_a_header_only_file_is_one_empty_batch(tmp_path: Path, bench_file: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text(HEADER + "\n")
    got = list(batches.parse_file_batches(path, "call_conversions", batch_bytes=10))
    assert len(got) == 1 and got[0].parsed.table.num_rows == 0
    assert outcome(batched, path, "call_conversions", 10) == outcome(api.parse_file, path, "call_conversions")


def test_stopping_early_stops_the_producer(bench_file: Path) -> None:
    stream = batches.parse_file_batches(bench_file, "call_conversions", batch_bytes=5000)
    next(stream)
    stream.close()  # joins the producer thread; a second parse works as before
    assert outcome(batched, bench_file, "call_conversions", 5000) == outcome(api.parse_file, bench_file)


@pytest.mark.parametrize("path", shared_files("corpora", "*.csv", recursive=True))
def test_corpus_file_in_batches(corpora: Path, path: Path) -> None:
    same_in_batches(path, None, sizes=(1, 7, 64, 4096))
    same_in_batches(path, "call_conversions", sizes=(1, 64))
