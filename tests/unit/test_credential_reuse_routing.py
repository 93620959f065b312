"""Credentials reuse (issue 11): how a shared login's uploads are routed (`push.routing.route`:
folder and pattern, deterministic, none or several is not one), and migration 014 linking
every existing credential to its connection (main stays main) and to its partner."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import duckdb
import pytest

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import InvalidInputError, Services
from connectbatch.settings import Settings
from connectbatch.transfer.push.routing import route


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


def _shared(tmp_path: Path, first: dict[str, str | None]) -> tuple[Services, int]:
    """Acme's push connection 'Calls' (with `first`'s pattern and folder) and its login's id."""
    services = Services(Settings(home=tmp_path))
    services.add_partner("Acme", "brand")
    services.create_connection(_push(0, "Calls", **first), partner="Acme")  # type: ignore[arg-type]
    [login] = services.credentials("Calls")
    return services, login.id


@pytest.mark.parametrize(
    ("first", "second", "where"),
    [
        ({"pattern": "*.csv"}, {"pattern": "*.csv"}, "in any folder of the login"),
        ({"pattern": "*.csv", "folder": "/daily/"}, {"pattern": "*.csv", "folder": "daily"}, "folder daily/"),
        ({"pattern": "*.csv"}, {"pattern": "*.csv", "folder": "daily"}, "folder daily/"),  # one takes all
    ],
)
def test_a_shared_push_login_refuses_a_second_connection_with_the_same_folder_and_pattern(
    tmp_path: Path, first: dict[str, str | None], second: dict[str, str | None], where: str
) -> None:
    services, login = _shared(tmp_path, first)
    with pytest.raises(InvalidInputError) as refused:
        services.create_connection(_push(0, "Daily", **second), partner="Acme", reuse_credential=login)  # type: ignore[arg-type]
    assert refused.value.field == "reuse_credential"
    assert "'Calls' uses the same push login" in str(refused.value) and where in str(refused.value)
    assert [c.name for c in services.connections()] == ["Calls"]
    assert services.credentials("Calls")[0].used_by == ("Calls",)


@pytest.mark.parametrize(
    "second",
    [
        {"pattern": "daily_*.csv"},
        {"pattern": "*.CSV"},  # routing matches case-sensitively: these take other files
        {"pattern": "*.csv", "folder": "weekly"},
    ],
)
def test_a_shared_push_login_takes_connections_whose_uploads_can_be_told_apart(
    tmp_path: Path, second: dict[str, str | None]
) -> None:
    services, login = _shared(tmp_path, {"pattern": "*.csv", "folder": "daily"})
    services.create_connection(_push(0, "Daily", **second), partner="Acme", reuse_credential=login)  # type: ignore[arg-type]
    assert services.credentials("Daily")[0].used_by == ("Calls", "Daily")


def test_an_edit_or_a_later_reuse_cannot_make_two_shared_connections_alike(tmp_path: Path) -> None:
    services, login = _shared(tmp_path, {"pattern": "calls_*.csv"})
    services.create_connection(_push(0, "Daily", "daily_*.csv"), partner="Acme", reuse_credential=login)
    with pytest.raises(InvalidInputError) as refused:
        services.update_connection("Daily", pattern="calls_*.csv")
    assert refused.value.field == "pattern" and "'Calls'" in str(refused.value)
    assert services.connection("Daily").pattern == "daily_*.csv"
    services.update_connection("Daily", lock_days=7)  # other edits are not checked against it

    services.create_connection(_push(0, "Weekly", "calls_*.csv"), partner="Acme")  # its own login
    with pytest.raises(InvalidInputError, match="'Calls' uses the same push login"):
        services.reuse_credential("Weekly", login)
    assert services.credentials("Calls")[0].used_by == ("Calls", "Daily")
