"""`connectbatch partner` and the partner of `connection add` (issue 11): every connection
belongs to a partner, named with --partner; partners are added, listed, shown, edited and
deleted (refused while connections belong to them), each with --json.

Run in-process against a data directory under tmp_path, with the test harness's default
partner switched off, as in the product."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from helpers.cli import cli

from connectbatch.cli import main
from connectbatch.services import Services
from connectbatch.services.base import ServiceBase
from connectbatch.settings import Settings

PUSH = ["--direction", "inbound", "--method", "sftp", "--methodology", "push"]


@pytest.fixture
def home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(ServiceBase, "default_partner", None)  # the product: a partner is required
    return home


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    out = cli(capsys, *argv, "--json")
    assert out.count("\n") == 1, "--json prints exactly one line"
    return json.loads(out)


def cli_error(capsys: pytest.CaptureFixture[str], *argv: str, mentions: str) -> str:
    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert captured.out == "" and len(lines) == 1, captured.err
    assert lines[0].startswith("connectbatch: error: ") and mentions in lines[0], lines[0]
    return lines[0]


def test_partner_add_list_show_edit_delete_with_json(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    added = cli_json(capsys, "partner", "add", "Acme Insurance", "--type", "brand",
                     "--email", "ops@acme.example", "--contacts", "Dana <dana@acme.example>")  # fmt: skip
    assert added["name"] == "Acme Insurance" and added["type"] == "brand"
    assert added["return_email"] == "ops@acme.example"
    assert "added partner" in cli(capsys, "partner", "add", "Invoca", "--type", "vendor")

    listed = cli_json(capsys, "partner", "list")
    assert [(p["name"], p["type"], p["connections"]) for p in listed] == [
        ("Acme Insurance", "brand", 0), ("Invoca", "vendor", 0),
    ]  # fmt: skip
    text = cli(capsys, "partner", "list")
    assert "Acme Insurance" in text and "vendor" in text

    cli(capsys, "connection", "add", "--name", "Acme calls", *PUSH, "--partner", "acme insurance")
    shown = cli_json(capsys, "partner", "show", "ACME INSURANCE")  # names are case-insensitive
    assert [c["name"] for c in shown["connections"]] == ["Acme calls"]
    assert "Acme calls" in cli(capsys, "partner", "show", "Acme Insurance")
    conn = cli_json(capsys, "connection", "show", "Acme calls")["connection"]
    assert conn["partner_id"] == added["id"]
    assert "Acme Insurance" in cli(capsys, "connection", "list")

    edited = cli_json(capsys, "partner", "edit", "Invoca", "--type", "agency", "--notes", "calls")
    assert edited["type"] == "agency" and edited["notes"] == "calls"
    cli_error(capsys, "partner", "edit", "Invoca", "--name", "acme insurance", mentions="already exists")

    # Refused while a connection belongs to it, naming the connection.
    cli_error(capsys, "partner", "delete", "Acme Insurance", "--yes", mentions="'Acme calls'")
    assert cli_json(capsys, "partner", "delete", "Invoca", "--yes") == {
        "deleted": {"id": edited["id"], "name": "Invoca"}
    }
    assert [p["name"] for p in cli_json(capsys, "partner", "list")] == ["Acme Insurance"]


def test_partner_values_are_checked_with_the_option_named(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_error(capsys, "partner", "add", "X", "--type", "brand", "--email", "not-mail", mentions="--email")
    cli_error(capsys, "partner", "add", "  ", "--type", "brand", mentions="--name: is required")
    assert main(["partner", "add", "X", "--type", "reseller"]) == 2  # not a partner type
    capsys.readouterr()
    cli(capsys, "partner", "add", "Acme", "--type", "brand")
    cli_error(capsys, "partner", "add", "ACME", "--type", "vendor", mentions="already exists")
    cli_error(capsys, "partner", "show", "Nobody", mentions="no partner named 'Nobody'")


def test_a_new_connection_needs_a_partner(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli_error(capsys, "connection", "add", "--name", "Orphan", *PUSH, mentions="--partner: is required")
    cli_error(capsys, "connection", "add", "--name", "Orphan", *PUSH, "--partner", "Ghost",
              mentions="no partner named 'Ghost'")  # fmt: skip
    assert cli_json(capsys, "connection", "list") == []
    cli(capsys, "partner", "add", "Acme", "--type", "brand")
    cli(capsys, "partner", "add", "Other", "--type", "publisher")
    cli(capsys, "connection", "add", "--name", "Calls", *PUSH, "--partner", "Acme")
    moved = cli_json(capsys, "connection", "edit", "Calls", "--partner", "Other")["connection"]
    assert moved["partner_id"] == cli_json(capsys, "partner", "show", "Other")["id"]


def test_the_migration_gives_every_existing_connection_a_partner_named_after_it(tmp_path: Path) -> None:
    """A database from before partners: connections without one move to a partner named after
    the connection (type brand); names differing only in case stay unique."""
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    migrations = Path(__file__).resolve().parents[2] / "connectbatch" / "store" / "migrations"
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, "
                "applied_at TIMESTAMPTZ DEFAULT current_timestamp)")  # fmt: skip
    for sql in sorted(migrations.glob("00[1-8]_*.sql")):
        con.execute(sql.read_text())
        version = int(sql.name[:3])
        con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, sql.stem])
    for name in ("Acme", "acme", "Invoca"):
        con.execute("INSERT INTO connections (name, data_type, direction, method, methodology) "
                    "VALUES (?, 'call_conversions', 'inbound', 'sftp', 'push')", [name])  # fmt: skip
    con.close()

    services = Services(Settings(home=tmp_path, db_path=db))
    by_id = services.partner_names()
    owners = {c.name: by_id[c.partner_id or 0] for c in services.connections()}
    acme_lower = services.connection("acme").id
    assert owners == {"Acme": "Acme", "acme": f"acme ({acme_lower})", "Invoca": "Invoca"}
    assert {p.type for p in services.partners()} == {"brand"}


def test_export_now_writes_only_the_partners_new_rows_once(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from helpers import call_csv

    cli(capsys, "partner", "add", "Acme", "--type", "brand")
    cli(capsys, "partner", "add", "Rival", "--type", "publisher")
    cli(capsys, "connection", "add", "--name", "Acme calls", *PUSH, "--partner", "Acme")
    cli(capsys, "connection", "add", "--name", "Rival calls", *PUSH, "--partner", "Rival")
    for name, prefix in (("Acme calls", "acme"), ("Rival calls", "rival")):
        path = tmp_path / f"{prefix}.csv"
        path.write_bytes(call_csv(2, prefix=prefix))
        cli(capsys, "ingest", str(path), "--connection", name)
    pickup = cli_json(capsys, "connection", "add", "--name", "Pickup", "--direction", "outbound",
                      "--method", "sftp", "--methodology", "pull_from_us", "--partner", "Acme")  # fmt: skip

    done = cli_json(capsys, "export", "Pickup")
    assert done["connection"] == pickup["connection"]["id"]
    assert (done["export"]["rows"], done["export"]["new_rows"]) == (2, 2)
    written = Path(done["export"]["path"]).read_text()
    assert "acme-0000" in written and "rival" not in written
    assert cli_json(capsys, "export", "Pickup") == {"connection": done["connection"], "export": None}
    assert "nothing new to export" in cli(capsys, "export", "Pickup")
    cli_error(capsys, "export", "Acme calls", mentions="is inbound")
