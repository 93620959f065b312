"""Status sync-back (issue 12, part 2): every later change of a partner's records goes back to
them exactly once, across restarts, in their own key names and status words, as status files
in their Pull-from-us folder and by e-mail through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from helpers import CALL_COLUMNS, call_csv, call_rows, modifications_csv, to_csv
from helpers.ports import free_port
from helpers.store import results_of
from smtp_server import Inbox, running_smtp, use_smtp

from connectbatch.cli import main
from connectbatch.models import CatalogMode, Connection, Direction, Method, Methodology, Redelivery, RunStatus
from connectbatch.services import InvalidInputError, Services
from connectbatch.services.base import ServiceBase
from connectbatch.settings import Settings, SmtpSettings

N = 3
LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)  # every action's lock time has come


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with running_smtp() as (handler, smtp):
        use_smtp(monkeypatch, smtp)
        yield handler


def _renamed(columns: dict[str, str], n: int = N, **kwargs: Any) -> bytes:
    """A call file whose header spells some columns the partner's way."""
    rows = [{columns.get(k, k): v for k, v in row.items()} for row in call_rows(n, **kwargs)]
    return to_csv(rows, [columns.get(c, c) for c in CALL_COLUMNS])


def _rows(data: bytes | str) -> list[dict[str, str]]:
    text = data.decode() if isinstance(data, bytes) else data
    return list(csv.DictReader(io.StringIO(text)))


def _status_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("status-*.csv")) if folder.exists() else []


def _pickup(services: Services) -> Connection:
    """The partner's "Pull from us" connection, where their login collects status files."""
    draft = Connection(
        "Pickup", "call_conversions", Direction.OUTBOUND, Method.SFTP, Methodology.PULL_FROM_US
    )
    created, _login = services.create_connection(draft)
    return created


def _sync(settings: Settings, name: str = "Acme") -> list[dict[str, str]]:
    """A sync-back from a new Services instance (a restart): the rows it sent, over all files."""
    done = Services(settings).sync_back_now(name, trigger="test")
    found: list[dict[str, str]] = []
    for s in done.sent:
        found += _rows((settings.outbound / str(s.connection_id) / s.file_name).read_bytes())
    return found


def test_modify_reverse_lock_are_reported_once_each_in_order_across_restarts(
    settings: Settings, services: Services, make_connection
) -> None:
    acme = make_connection("Acme", sync_back=["files"], lock_days=30)
    pickup = _pickup(services)
    # 40 rows, one rejected (2.5 %: under the reject-rate limit, so the file loads)
    data = _renamed({"CallSessionId": "callSessionId"}, n=40, overrides={1: {"CallDuration": "abc"}})
    services.ingest_bytes("Acme", "calls.csv", data)
    actions = sorted(services.actions("Acme"), key=lambda a: a.id)
    a0, a1 = actions[0], actions[1]
    assert len(actions) == 39

    loads = _sync(settings)
    # the partner's own key name; line order; the bad row rejected with its reason
    assert len(loads) == 40
    assert [(r["Line"], r["callSessionId"], r["Change"], r["Status"]) for r in loads[:3]] == [
        ("2", a0.source_key, "accepted", "valid"),
        ("3", "cs-0001", "rejected", "invalid"),  # the key the parser could read
        ("4", a1.source_key, "accepted", "valid"),
    ]
    assert "CallDuration" in loads[1]["Reason"] and loads[0]["ActionId"] == a0.label
    assert all(r["File"] == "calls.csv" for r in loads)
    # the same status file is in the partner's Pull-from-us folder
    [mine] = _status_files(settings.outbound / str(acme.id))
    [theirs] = _status_files(settings.outbound / str(pickup.id))
    assert mine.name == theirs.name and mine.read_bytes() == theirs.read_bytes()

    services.modify_action(a0.id, "25.50", reason="upsell", actor="alice")
    [modified] = _sync(settings)
    assert (modified["ActionId"], modified["callSessionId"]) == (a0.label, a0.source_key)
    assert (modified["Change"], modified["Status"]) == ("modified", "valid")
    assert (modified["OldAmount"], modified["NewAmount"], modified["Reason"]) == (
        str(a0.amount), "25.50", "upsell",
    )  # fmt: skip

    services.reverse_action(a0.id, "returned", actor="alice")
    Services(settings).lock_actions(LATER, early=True)
    later = _sync(settings)
    # a reversed action that locks stays deleted for the partner (it said "valid", and the
    # partner's system would have taken the reversed call back as valid)
    assert [(r["ActionId"], r["Change"], r["Status"]) for r in later] == [
        (a0.label, "reversed", "invalid"),
        *[(a.label, "locked", "invalid" if a.id == a0.id else "valid") for a in actions],
    ]

    assert _sync(settings) == []  # nothing new: nothing written, nothing repeated
    ledger = Services(settings).sync_backs("Acme")
    assert [s.rows for s in reversed(ledger)] == [40, 1, 40]
    assert len(_status_files(settings.outbound / str(pickup.id))) == 3


def test_a_released_held_batch_reports_released_rows_and_a_discarded_one_its_file(
    settings: Settings, services: Services, make_connection
) -> None:
    make_connection("Acme", sync_back=["files"])
    # held for a talk time over the call's (a negative amount would stay out on release)
    held = services.ingest_bytes("Acme", "neg.csv", call_csv(N, overrides={0: {"CallerId": "1.55512E+10"}}))
    refused = services.ingest_bytes(
        "Acme", "bad.csv", call_csv(N, prefix="x", overrides={0: {"SaleAmount": "-1"}})
    )
    assert held.review == refused.review == "quarantined"
    assert _sync(settings) == []  # held: nothing decided yet

    services.release(held.id, note="checked", actor="bob")
    services.discard(refused.id, note="wrong account", actor="bob")

    rows = _sync(settings)
    released = [r for r in rows if r["File"] == "neg.csv"]
    assert [r["Change"] for r in released] == ["released"] * N
    assert {r["Status"] for r in released} == {"valid"}
    assert all(r["ActionId"].startswith("A-") and "released by bob: checked" in r["Reason"] for r in released)
    [discarded] = [r for r in rows if r["File"] == "bad.csv"]
    assert (discarded["Line"], discarded["Change"], discarded["Status"]) == ("0", "discarded", "invalid")
    assert "discarded by bob: wrong account" in discarded["Reason"]  # the reviewer's note too
    assert _sync(settings) == []


def test_status_words_are_the_partners_and_settings_are_checked(
    settings: Settings, services: Services, make_connection
) -> None:
    make_connection("Acme")
    with pytest.raises(InvalidInputError, match="sync-back"):
        services.sync_back_now("Acme")  # off by default
    services.update_connection(
        "Acme", sync_back="files", status_words='{"accepted": "OK", "Reversed": "gone"}'
    )
    assert services.connection("Acme").status_words == {"accepted": "OK", "reversed": "gone"}
    for bad in ('{"paid": "x"}', '{"accepted": ""}', "[1]", "{"):
        with pytest.raises(InvalidInputError) as caught:
            services.update_connection("Acme", status_words=bad)
        assert caught.value.field == "status_words"
    with pytest.raises(InvalidInputError, match="channel"):
        services.update_connection("Acme", sync_back="files,fax")
    pickup = _pickup(services)
    with pytest.raises(InvalidInputError, match="inbound"):
        services.update_connection(pickup.id, sync_back=["files"])

    # a formula in the partner's key stays text
    services.ingest_bytes("Acme", "calls.csv", call_csv(1, overrides={0: {"CallSessionId": "=HYPERLINK(1)"}}))
    [row] = _sync(settings)
    assert (row["Status"], row["CallSessionId"]) == ("OK", "'=HYPERLINK(1)")


# ------------------------------------------------------------------ e-mail


def _status_mails(inbox: Inbox) -> list[EmailMessage]:
    return [m for m in inbox.messages if "status changes" in str(m["Subject"])]


def test_status_changes_are_emailed_once_to_the_return_address(inbox: Inbox, settings: Settings) -> None:
    settings = replace(settings, smtp=SmtpSettings.from_env())
    services = Services(settings)
    draft = Connection(
        "Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
        return_email="ops@acme.example", sync_back=["email"],
    )  # fmt: skip
    services.create_connection(draft)
    services.ingest_bytes("Acme", "calls.csv", _renamed({"CallSessionId": "callsessionid"}, n=2))
    [a0, _a1] = sorted(services.actions("Acme"), key=lambda a: a.id)
    services.reverse_action(a0.id, "fraud", actor="alice")

    done = Services(settings).sync_back_now("Acme")

    [message] = _status_mails(inbox)
    assert message["To"] == "ops@acme.example"
    [attachment] = list(message.iter_attachments())
    assert (
        attachment.get_filename() == done.sent[0].file_name and done.sent[0].recipient == "ops@acme.example"
    )
    content = attachment.get_content()
    rows = _rows(content if isinstance(content, str) else content.decode())
    assert [(r["callsessionid"], r["Change"], r["Status"]) for r in rows] == [
        (a0.source_key, "accepted", "valid"),
        (_a1.source_key, "accepted", "valid"),
        (a0.source_key, "reversed", "invalid"),
    ]
    assert done.paths == []  # e-mail only: no file in a folder
    assert Services(settings).sync_back_now("Acme").sent == []
    assert len(_status_mails(inbox)) == 1


def test_status_changes_mailed_while_the_smtp_server_is_down_arrive_once_it_is_back(
    settings: Settings,
) -> None:
    """The status file was sent inside the sync's transaction: a relay that was down rolled
    the sync back, to be rendered and tried again every five minutes, holding the database
    while it waited. It is queued with the sync's ledger now (pipeline/outbox.py)."""

    from helpers.clock import Clock
    from smtp_server import HOST

    from connectbatch.pipeline import outbox

    port = free_port()  # a port nothing listens on yet
    clock = Clock()
    smtp = SmtpSettings(host=HOST, port=port, sender="results@connectbatch.test")
    services = Services(replace(settings, smtp=smtp), clock=clock)
    draft = Connection(
        "Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
        return_email="ops@acme.example", sync_back=["email"],
    )  # fmt: skip
    services.create_connection(draft)
    services.ingest_bytes("Acme", "calls.csv", _renamed({}, n=2))
    [sent] = services.sync_back_now("Acme").sent
    assert services.sync_back_now("Acme").sent == []  # recorded: not rendered again
    with running_smtp(port=port) as (inbox, _):
        clock.now += dt.timedelta(seconds=outbox.BACKOFF[0])
        services.outbox.send_due()
        [message] = _status_mails(inbox)
    assert [a.get_filename() for a in message.iter_attachments()] == [sent.file_name]


# ------------------------------------------------------------------ CLI


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    result = main(list(argv))
    captured = capsys.readouterr()
    assert result == 0, captured.err
    return captured.out


def test_cli_edit_and_syncback_with_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONNECTBATCH_HOME", str(tmp_path / "cli-home"))
    monkeypatch.delenv("CONNECTBATCH_DB", raising=False)
    monkeypatch.setattr(ServiceBase, "default_partner", None)
    _cli(capsys, "partner", "add", "Acme", "--type", "brand")
    _cli(capsys, "connection", "add", "--name", "Acme calls", "--direction", "inbound", "--method", "sftp",
         "--methodology", "push", "--partner", "Acme")  # fmt: skip
    edited = json.loads(
        _cli(
            capsys,
            "connection",
            "edit",
            "Acme calls",
            "--sync-back",
            "files",
            "--status-words",
            '{"reversed": "removed"}',
            "--json",
        )
    )
    assert edited["connection"]["sync_back"] == ["files"]
    assert edited["connection"]["status_words"] == {"reversed": "removed"}
    path = tmp_path / "calls.csv"
    path.write_bytes(call_csv(2))
    _cli(capsys, "ingest", str(path), "--connection", "Acme calls")

    out = _cli(capsys, "syncback", "Acme calls", "--json")
    assert out.count("\n") == 1
    done = json.loads(out)
    [sent] = done["sent"]
    assert (sent["channel"], sent["rows"], sent["trigger"]) == ("files", 2, "cli")
    assert [Path(p).name for p in done["paths"]] == [sent["file_name"]]
    again = json.loads(_cli(capsys, "syncback", "Acme calls", "--json"))
    assert again["sent"] == [] and again["paths"] == []
    assert "no status changes" in _cli(capsys, "syncback", "Acme calls")
    assert "status sync-back" in _cli(capsys, "connection", "show", "Acme calls")


def _keyed(rows: list[dict[str, str]], key: str) -> list[tuple[str, str]]:
    return [(r["Line"], r[key]) for r in rows if r.get("Change", r.get("Status")) in ("rejected", "REJECTED")]


def test_modifications_refused_after_a_release_name_their_action_id(
    settings: Settings, services: Services, make_connection
) -> None:
    """A held modifications file a reviewer released: the rows that could not apply (no such
    action, a negative amount) name their ActionId in the results file and the status file."""
    make_connection("Acme")
    services.ingest_bytes("Acme", "calls.csv", call_csv(N))
    make_connection("Acme returns", data_type="action_modifications", sync_back=["files"])
    label = services.actions("Acme")[0].label
    rows = [(label, "5.00", "ok"), ("A-999999", "1.00", "unknown"), (label, "-5", "negative")]
    held = services.ingest_bytes("Acme returns", "mods.csv", modifications_csv(rows))
    assert held.review == "quarantined"  # the negative amount fails an expectation

    services.release(held.id, note="checked", actor="bob")

    [results_csv] = [p for p in services.results_files("Acme returns") if p.name.endswith(".results.csv")]
    assert _keyed(_rows(results_csv.read_bytes()), "ActionId") == [("3", "A-999999"), ("4", label)]
    assert _keyed(_sync(settings, "Acme returns"), "ActionId") == [("3", "A-999999"), ("4", label)]


def test_corrections_not_replaced_and_records_already_loaded_name_their_keys(
    settings: Settings, services: Services, make_connection
) -> None:
    """Supersede mode refusing a correction of a reversed action, and a released batch
    leaving out a record already loaded: both rows name the record in the results file. The
    status files say nothing of them: the record each names stands as already reported (a
    partner audit found a paid record marked `invalid` by such a row)."""
    make_connection("Acme", sync_back=["files"], lock_days=30, redelivery=Redelivery.SUPERSEDE)
    make_connection("Beta", sync_back=["files"])
    services.ingest_bytes("Acme", "calls.csv", call_csv(N))
    services.ingest_bytes("Beta", "calls.csv", call_csv(N, prefix="b"))
    first = sorted(services.actions("Acme"), key=lambda a: a.id)[0]
    services.reverse_action(first.id, "returned", actor="alice")
    _sync(settings)  # the loads are reported: only what follows is new
    _sync(settings, "Beta")

    fixed = services.ingest_bytes("Acme", "fix.csv", call_csv(1, overrides={0: {"SaleAmount": "99.00"}}))
    again = services.ingest_bytes(
        "Beta", "again.csv", call_csv(2, prefix="b", overrides={1: {"SaleAmount": "-1"}})
    )
    assert again.review == "quarantined"
    services.release(again.id, note="ok", actor="bob")

    fixed_rows, _ = results_of(services, "Acme", fixed.id)
    assert _keyed(fixed_rows, "CallSessionId") == [("2", first.source_key)]
    assert [r for r in _sync(settings) if r["File"] == "fix.csv"] == []
    again_rows, _ = results_of(services, "Beta", again.id)
    assert _keyed(again_rows, "CallSessionId") == [("2", "b-0000"), ("3", "b-0001")]
    by_line = {r["Line"]: r["Reason"] for r in again_rows}
    assert "already loaded" in by_line["3"]  # that, whatever else the row holds (-1)
    assert [r for r in _sync(settings, "Beta") if r["File"] == "again.csv"] == []


def test_rows_the_parser_refused_for_another_column_name_their_key_everywhere(
    settings: Settings, services: Services, make_connection, tmp_path: Path
) -> None:
    """A row refused for a bad CallDuration still has a readable CallSessionId: the stored
    reject keeps it (CLI `rejects --json`), and the status file names the row by it, whether
    the file was loaded alone, in a group, or held and released by a reviewer."""
    make_connection("Acme", sync_back=["files"])
    bad = {1: {"CallDuration": "abc"}}
    alone = services.ingest_bytes("Acme", "alone.csv", call_csv(40, prefix="al", overrides=bad))
    paths = []
    for name in ("g1", "g2"):
        paths.append(tmp_path / f"{name}.csv")
        paths[-1].write_bytes(call_csv(40, prefix=name, overrides=bad))
    services.ingest_files("Acme", paths)
    held = services.ingest_bytes(  # 2 of 5 rows rejected: over the reject-rate limit, held
        "Acme",
        "held.csv",
        call_csv(5, prefix="hd", overrides={1: {"CallDuration": "x"}, 3: {"EventDate": "?"}}),
    )
    assert held.review == "quarantined"
    services.release(held.id, note="ok", actor="bob")

    assert [r.key for r in services.rejects(alone.id)] == ["al-0001"]
    assert _keyed(_sync(settings), "CallSessionId") == [
        ("3", "al-0001"), ("3", "g1-0001"), ("3", "g2-0001"), ("3", "hd-0001"), ("5", "hd-0003"),
    ]  # fmt: skip


def test_catalog_items_a_snapshot_removes_are_reported_once_as_removed(
    settings: Settings, services: Services, make_connection
) -> None:
    """A catalog in snapshot mode marks removed the items a file leaves out; the partner was
    never told (the status files said nothing about them). Each removed item goes back once,
    `removed` (their word: deleted), at its own file and line, the snapshot in the Reason,
    in the partner's own key name."""
    make_connection(
        "Shop", "product_catalogs", sync_back=["files"], catalog_mode=CatalogMode.SNAPSHOT,
        column_map={"sku": "CatalogItemId"},
    )  # fmt: skip
    header = ["sku", "Name", "Url", "CurrentPrice"]

    def catalog(*skus: str) -> bytes:
        rows = [{"sku": s, "Name": s, "Url": f"https://e.example/{s}", "CurrentPrice": "1.00"} for s in skus]
        return to_csv(rows, header)

    services.ingest_bytes("Shop", "full.csv", catalog("S1", "S2", "S3"))
    assert len(_sync(settings, "Shop")) == 3
    run = services.ingest_bytes("Shop", "smaller.csv", catalog("S1"))
    assert run.rows_removed == 2

    removed = _sync(settings, "Shop")

    assert [(r["File"], r["Line"], r["Change"], r["Status"]) for r in removed] == [
        ("full.csv", "3", "removed", "invalid"),
        ("full.csv", "4", "removed", "invalid"),
    ]
    assert [r["sku"] for r in removed] == ["S2", "S3"]
    assert all(r["Reason"] == "not listed in the snapshot smaller.csv" for r in removed)
    assert _sync(settings, "Shop") == []  # once


def test_a_file_refused_as_a_whole_reports_each_record_it_refused(
    settings: Settings, services: Services, make_connection
) -> None:
    """Found by a partner audit: a file whose every row was rejected sent one Line 0 row, and
    a partner applying statuses per record never heard of R-1 and R-2."""
    make_connection("Acme", sync_back=["files"])
    bad = {i: {"CallDuration": "abc"} for i in range(3)}
    run = services.ingest_bytes("Acme", "allbad.csv", call_csv(3, prefix="r", overrides=bad))
    assert run.status is RunStatus.FAILED

    rows = [r for r in _sync(settings) if r["File"] == "allbad.csv"]

    assert [(r["Line"], r["Change"]) for r in rows] == [
        ("0", "rejected"), ("2", "rejected"), ("3", "rejected"), ("4", "rejected"),
    ]  # fmt: skip
    assert [r["CallSessionId"] for r in rows] == ["", "r-0000", "r-0001", "r-0002"]
    assert {r["Status"] for r in rows} == {"invalid"} and "CallDuration" in rows[1]["Reason"]


def test_a_modifications_status_file_says_how_each_action_stands(
    settings: Settings, services: Services, make_connection
) -> None:
    """Actions audit: keyed by ActionId, a refused change of a valid, payable action read
    `invalid` (a partner applying it flips a paid action), and an accepted reversal `valid`.
    The Status word is now the action's: reversed is invalid, any other valid; an id that is
    no action of the partner's stays invalid."""
    make_connection("Acme")
    services.ingest_bytes("Acme", "calls.csv", call_csv(N))
    make_connection("Acme returns", data_type="action_modifications", sync_back=["files"])
    first, second = sorted(services.actions("Acme"), key=lambda a: a.id)[:2]
    rows = [(first.label, "0", "returned"), (second.label, "-5", "negative"), ("A-999999", "1.00", "unknown")]
    held = services.ingest_bytes("Acme returns", "mods.csv", modifications_csv(rows))
    services.release(held.id, note="checked", actor="bob")

    said = {
        (r["ActionId"], r["Change"]): r["Status"] for r in _sync(settings, "Acme returns") if r["Line"] != "0"
    }
    assert said == {
        (first.label, "released"): "invalid",  # reversed by the row
        (second.label, "rejected"): "valid",  # refused: the action stands, payable
        ("A-999999", "rejected"): "invalid",  # no such action
    }
