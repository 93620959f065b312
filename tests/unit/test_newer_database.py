"""A data folder a newer ConnectBatch migrated is not opened by an older one: the older one
would store rows without what the newer keeps beside them (an old release beside the key
index loaded re-sent records twice), so it says what to do instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectbatch.errors import ConnectBatchError
from connectbatch.store import Database
from connectbatch.store import db as db_module


def test_a_database_a_newer_version_migrated_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "cb.duckdb"
    db = Database(path)
    with db.transaction() as con:
        con.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'from_the_future')")
    db.release()
    known = db_module._migrations()[-1][0]
    with pytest.raises(ConnectBatchError) as err, Database(path).connect():
        pass
    assert str(err.value) == (
        f"{path} was upgraded by a newer ConnectBatch (database migration 999; this version knows up "
        f"to {known}): run the newer version, or restore a backup from before the upgrade"
    )
