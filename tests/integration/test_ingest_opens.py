"""How many times one file's ingest opens the database (issue 13: each open of a large
DuckDB file costs ~35 ms; the goal is one connection per file's ingest).

Today's count is the bound, so a change that adds an open fails here and one that removes
opens lowers it. Where they come from (measured with a stack per open, 200-row file):
services/base.py `_inbound` (the connection), ingest.start_run, staging.record,
ingest._mapping_for, ingest._validate (already-loaded keys), the load transaction, the
results' row actions, ingest._file (the ledger row back) and ingest.finish_run.
"""

from __future__ import annotations

from helpers import call_csv

from connectbatch.services import Services

OPENS_PER_INGEST = 9  # issue 13 goal: 1


def test_one_file_ingest_opens_the_database_at_most_nine_times(services: Services, make_connection) -> None:
    make_connection("Acme")
    services.ingest_bytes("Acme", "first.csv", call_csv(5))  # migrations and first-use opens
    before = services.db.opens
    run = services.ingest_bytes("Acme", "second.csv", call_csv(5, prefix="b"))
    opens = services.db.opens - before
    assert run.files_loaded == 1
    assert 1 <= opens <= OPENS_PER_INGEST, opens
