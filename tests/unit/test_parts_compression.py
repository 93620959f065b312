"""A Parquet part compresses only the columns that compress (`parts.writer_options` with a
sample of the file's rows): snappy over random ids cost CPU for a few per cent of bytes."""

from __future__ import annotations

import io
import secrets

import pyarrow as pa
import pyarrow.parquet as pq

from connectbatch.store import parts


def _table(rows: int) -> pa.Table:
    return pa.table(
        {
            "CallSessionId": [secrets.token_hex(16) for _ in range(rows)],  # random: no saving
            "CallRecording": [
                f"https://recordings.example.com/calls/2026/03/{i:08d}.mp3" for i in range(rows)
            ],
            "line": pa.array(range(2, rows + 2), pa.int64()),
        }
    )


def _codecs(table: pa.Table, options: dict[str, object]) -> dict[str, str]:
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)
    group = pq.read_metadata(io.BytesIO(sink.getvalue())).row_group(0)
    return {group.column(i).path_in_schema: group.column(i).compression for i in range(group.num_columns)}


def test_only_columns_that_compress_are_compressed() -> None:
    table = _table(5_000)
    options = parts.writer_options(table.schema, "call_conversions", table)
    assert options["compression"] == {"CallSessionId": "none", "CallRecording": "snappy", "line": "snappy"}
    codecs = _codecs(table, options)
    assert codecs["CallSessionId"] == "UNCOMPRESSED" and codecs["CallRecording"] == "SNAPPY"
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)
    assert pq.read_table(io.BytesIO(sink.getvalue())).equals(table)


def test_without_a_sample_every_column_is_compressed() -> None:
    table = _table(100)
    assert parts.writer_options(table.schema, "call_conversions")["compression"] == parts.COMPRESSION
    assert (
        parts.writer_options(table.schema, "call_conversions", table.slice(0, 0))["compression"] == "snappy"
    )


def _encodings(table: pa.Table, options: dict[str, object]) -> dict[str, tuple[str, ...]]:
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)
    group = pq.read_metadata(io.BytesIO(sink.getvalue())).row_group(0)
    return {group.column(i).path_in_schema: group.column(i).encodings for i in range(group.num_columns)}


def test_only_columns_whose_values_repeat_get_a_dictionary() -> None:
    """Ids, URLs and line numbers are written plain; a column of few values (a country, a
    null-only column) keeps its dictionary."""
    table = _table(5_000).append_column("Country", pa.array(["US", "CA", "GB", "DE"] * 1_250))
    table = table.append_column("Region", pa.nulls(5_000, pa.string()))
    options = parts.writer_options(table.schema, "call_conversions", table)
    assert options["use_dictionary"] == ["Country", "Region"]
    encodings = _encodings(table, options)
    assert "RLE_DICTIONARY" in encodings["Country"]
    assert not any("DICTIONARY" in e for e in encodings["CallSessionId"] + encodings["line"])
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)
    assert pq.read_table(io.BytesIO(sink.getvalue())).equals(table)


def test_without_a_sample_every_column_may_use_a_dictionary() -> None:
    assert "use_dictionary" not in parts.writer_options(_table(10).schema, "call_conversions")
