"""A run that failed for a full disk, or for a load that collided with another, says so first.

Its reason read "load (commit) failed: TransactionException: TransactionContext Error: Failed
to commit: Could not write file ".../connectbatch.duckdb.wal": No space left on device" (crash
audit): the cause and what to do were buried in DuckDB's words. DuckDB's own error is raised
where the load writes its rows; the error stays at the end, for an operator."""

from __future__ import annotations

import duckdb
import pytest
from helpers import call_csv

from connectbatch.models import RunStatus
from connectbatch.services import Services
from connectbatch.store import data as data_store


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            'Could not write file "/data/connectbatch.duckdb.wal": No space left on device',
            "load (commit) failed: the disk is full; nothing of this file was loaded. Free space, then retry",
        ),
        (
            'Catalog write-write conflict on alter with "Schema\\0main\\0View"',
            "load (commit) failed: another load changed the same records at the same moment",
        ),
    ],
)
def test_a_failed_load_says_why_in_words_first(
    services: Services, make_connection, monkeypatch: pytest.MonkeyPatch, error: str, said: str
) -> None:
    make_connection("Acme")

    def failing(*_args: object, **_kwargs: object) -> int:
        raise duckdb.TransactionException(error)

    monkeypatch.setattr(data_store, "insert_rows", failing)
    run = services.ingest_bytes("Acme", "calls.csv", call_csv(3))

    assert run.status is RunStatus.FAILED
    assert (run.reason or "").startswith(f"calls.csv: {said}"), run.reason
    assert error in (run.reason or "")  # DuckDB's words kept, at the end
