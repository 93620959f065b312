"""A record's identity text: one value per record, the same in Arrow (batches) and in DuckDB
(stored rows), and never the same for two records whatever a partner puts in the cells."""

from __future__ import annotations

import itertools

import duckdb
import pyarrow as pa

from connectbatch import schemas
from connectbatch.schemas import record_key

CALLS = schemas.get("call_conversions")
# values an escape or a join could confuse: the separator, backslashes, the escape's own text
HARD = [None, "", "a", "b", "a\x1fb", "\\", "\\u", "a\\", "\x1f", "\\\\u", "a\x1f", "\x1fb"]


def _pairs() -> pa.Table:
    pairs = [(k, q) for k, q in itertools.product(HARD, HARD) if k is not None]
    return pa.table(
        {
            "CallSessionId": pa.array([k for k, _ in pairs], pa.string()),
            "VendorEventId": pa.array([q for _, q in pairs], pa.string()),
        }
    )


def test_every_pair_has_its_own_text_and_duckdb_computes_the_same() -> None:
    table = _pairs()
    texts = record_key.texts(CALLS, table).to_pylist()
    assert len(set(texts)) == table.num_rows  # injective: no two records share one
    con = duckdb.connect()
    con.register("t", table)
    stored = [r[0] for r in con.execute(f"SELECT {record_key.sql(CALLS, 't')} FROM t").fetchall()]
    assert stored == texts


def test_a_call_without_an_event_id_keeps_its_session_id_as_identity() -> None:
    """Plain ids are their own identity: the key index of a store keyed by CallSessionId
    alone holds the same hashes for them."""
    table = pa.table({"CallSessionId": ["cs-1", "cs-2"], "VendorEventId": pa.array([None, "e"], pa.string())})
    assert record_key.texts(CALLS, table).to_pylist() == ["cs-1", "cs-2\x1fe"]
    assert record_key.shown(CALLS, table).to_pylist() == ["cs-1", "cs-2 / e"]  # as people read it
    assert record_key.texts(CALLS, table.select(["CallSessionId"])).to_pylist() == ["cs-1", "cs-2"]
    assert record_key.sql(CALLS, "n", ["CallSessionId"]) == (
        "replace(replace(CAST(n.\"CallSessionId\" AS VARCHAR), '\\', '\\\\'), chr(31), '\\u')"
    )


def test_a_data_type_with_one_key_column_is_identified_by_it() -> None:
    clicks = schemas.get("clicks")
    table = pa.table({"ClickId": ["a\x1fb", "\\"]})
    assert record_key.texts(clicks, table).to_pylist() == ["a\x1fb", "\\"]
    assert record_key.sql(clicks, "d") == 'CAST(d."ClickId" AS VARCHAR)'
    assert record_key.described(CALLS) == "CallSessionId with VendorEventId"
