"""Two connections' first big files of a data type, loaded at once, both load.

The first part of a data type points its views at the parts folder. Each load did that in
its own transaction, so when two loads did it at once (two partners' big uploads arriving
together on a fresh store) the second commit failed on the views' catalog entry ("Catalog
write-write conflict on alter"), and a file the partner had been told was received became a
Failed run with DuckDB's words as its reason (crash audit). Here each load waits, after
registering its part, until the other has too, so both transactions overlap every time."""

from __future__ import annotations

import threading

import pytest
from helpers import call_csv

from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import Services
from connectbatch.store import data as data_store
from connectbatch.store import parts


def test_two_first_parts_of_a_type_loaded_at_once_both_load(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data_store, "PARQUET_MIN_ROWS", 1)  # every file a part
    both = threading.Barrier(2, timeout=30)
    register = parts._register

    def register_then_wait(*args, **kwargs):  # type: ignore[no-untyped-def]
        register(*args, **kwargs)
        both.wait()  # the other load has registered its part too: neither committed yet

    monkeypatch.setattr(parts, "_register", register_then_wait)
    for name in ("Partner A", "Partner B"):
        services.create_connection(
            Connection(name, "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
        )
    runs: dict[str, object] = {}

    def ingest(name: str, prefix: str) -> None:
        runs[name] = services.ingest_bytes(name, f"{prefix}.csv", call_csv(50, prefix=prefix))

    threads = [threading.Thread(target=ingest, args=a) for a in (("Partner A", "a"), ("Partner B", "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    statuses = {name: (run.status, run.reason) for name, run in runs.items()}  # type: ignore[attr-defined]
    assert statuses == {"Partner A": (RunStatus.COMPLETED, None), "Partner B": (RunStatus.COMPLETED, None)}
    with services.db.connect() as con:
        assert parts.reads_parts(con, "call_conversions")
        rows = con.execute("SELECT count(*) FROM rows_call_conversions").fetchone()
    assert rows == (100,)
