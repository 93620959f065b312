"""Credentials reuse (issue 11): how a shared login's uploads are routed (`gateway.route`:
folder and pattern, deterministic, none or several is not one), and migration 014 linking
every existing credential to its connection (main stays main) and to its partner."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import duckdb

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services
from connectbatch.settings import Settings
from connectbatch.transfer.push.gateway import route


def _push(cid: int, name: str, pattern: str, folder: str | None = None) -> Connection:
    return Connection(name, "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
                      id=cid, pattern=pattern, folder=folder)  # fmt: skip


def test_route_matches_folder_and_pattern_in_id_order() -> None:
    calls = _push(2, "Calls", "calls_*.csv")
    daily = _push(1, "Daily", "*.csv", folder="/daily/")
    both = [calls, daily]

    def names(path: str) -> list[str]:
        return [c.name for c in route(both, PurePosixPath(path))]

    assert names("calls_1.csv") == ["Calls"]
    assert names("daily/report.csv") == ["Daily"]
    assert names("daily/calls_2.csv") == ["Daily", "Calls"]  # several: the gateway takes none
    assert names("other/report.csv") == []
    assert names("notes.txt") == []
    assert names("deeper/calls_3.csv") == ["Calls"]  # no folder: anywhere in the login's home
    assert names("daily/sub/report.csv") == []  # a folder is that folder, not below it


def test_migration_014_links_existing_credentials_to_their_connection_and_partner(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    migrations = Path(__file__).resolve().parents[2] / "connectbatch" / "store" / "migrations"
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, "
                "applied_at TIMESTAMPTZ DEFAULT current_timestamp)")  # fmt: skip
    for sql in sorted(migrations.glob("*.sql")):
        if int(sql.name[:3]) >= 14:
            continue
        con.execute(sql.read_text())
        con.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [int(sql.name[:3]), sql.stem]
        )
    con.execute("INSERT INTO partners (name, name_key, type) VALUES ('Acme', 'acme', 'brand')")
    con.execute("INSERT INTO connections (name, data_type, direction, method, methodology, partner_id) "
                "VALUES ('Calls', 'call_conversions', 'inbound', 'sftp', 'push', "
                "(SELECT id FROM partners))")  # fmt: skip
    for name, main in (("old login", False), ("new login", True)):
        con.execute("INSERT INTO credentials (connection_id, name, kind, username, is_main) VALUES "
                    "((SELECT id FROM connections), ?, 'provisioned', ?, ?)", [name, name, main])  # fmt: skip
    con.close()

    services = Services(Settings(home=tmp_path, db_path=db))
    new, old = services.credentials("Calls")
    assert (new.name, new.is_main, old.name, old.is_main) == ("new login", True, "old login", False)
    assert new.used_by == ("Calls",) and new.partner_id == services.partner("Acme").id
    services.delete_connection("Calls")  # only it used them: they go with it
    with services.db.connect() as con2:
        assert con2.execute("SELECT count(*) FROM credentials").fetchone() == (0,)
        assert con2.execute("SELECT count(*) FROM credential_connections").fetchone() == (0,)
