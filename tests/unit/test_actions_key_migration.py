"""Migration 031 (issue 13): the actions table rebuilt with its source_key uncompressed. An
installation's actions come through it unchanged (ids, keys, states, amounts, reasons, times),
the key keeps NOT NULL, and new loads and changes work on the rebuilt table."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from connectbatch.models import ActionStatus, Connection, Direction, Method, Methodology
from connectbatch.services import Services
from connectbatch.settings import Settings
from tests.helpers import call_csv

COLUMNS = (
    "id, connection_id, run_id, file_id, line, data_type, source_key, campaign_id, media_id, event_date, "
    "amount, original_amount, status, state_before_lock, reason, lock_at, created_at, updated_at"
)


def _actions(con: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return con.execute(f"SELECT {COLUMNS} FROM actions ORDER BY id").fetchall()


def _as_before(con: duckdb.DuckDBPyConnection) -> None:
    """The table as migration 001 made it (compression left to DuckDB), 031 not applied
    (nor 032, which comes after it)."""
    con.execute("CREATE TABLE before_031 AS SELECT * FROM actions")
    con.execute("DROP TABLE actions")
    con.execute("ALTER TABLE before_031 RENAME TO actions")
    con.execute("ALTER TABLE actions DROP COLUMN currency")
    con.execute("DELETE FROM schema_migrations WHERE version >= 31")


def test_actions_come_through_the_rebuild(tmp_path: Path) -> None:
    services = Services(Settings(home=tmp_path))
    services.create_connection(Connection("Calls", "call_conversions", Direction.INBOUND, Method.SFTP,
                                          Methodology.PUSH))  # fmt: skip
    services.ingest_bytes("Calls", "a.csv", call_csv(5))
    first, second, *_ = services.actions("Calls")
    services.modify_action(first.id, "12.50", "partial refund", actor="ops")
    services.reverse_action(second.id, "duplicate call", actor="ops")
    with services.db.transaction() as con:
        _as_before(con)
        before = _actions(con)
    services.db.release()

    again = Services(Settings(home=tmp_path))
    with again.db.connect() as con:
        assert _actions(con) == before
        assert {r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()} >= {31}
        con.execute("CHECKPOINT")
        kinds = con.execute(
            "SELECT DISTINCT compression FROM pragma_storage_info('actions') WHERE column_name = 'source_key'"
        ).fetchall()
        assert {k[0] for k in kinds} <= {"Uncompressed", "Constant"}
        with pytest.raises(duckdb.ConstraintException, match="source_key"):
            con.execute(
                "INSERT INTO actions (id, connection_id, run_id, file_id, line, data_type, source_key, "
                "event_date, amount, original_amount, status, lock_at) "
                "VALUES (-1, 1, 1, 1, 1, 'x', NULL, now(), 0, 0, 'PENDING', now())"
            )
    assert sorted(a.source_key for a in again.actions("Calls")) == [f"cs-{i:04d}" for i in range(5)]
    again.ingest_bytes("Calls", "b.csv", call_csv(3, prefix="other"))
    assert again.count_actions("Calls") == 8
    assert again.action(first.id).status is ActionStatus.MODIFIED
    assert again.action(second.id).status is ActionStatus.REVERSED
