"""The partner's end of the loop (probe-loop): what comes back to a partner after a held batch
is decided, and where their e-mail answers go. Each test plays the partner: it delivers a
file through `Services` and reads only what the partner would receive (the results file,
the summary, the mail a real SMTP server got)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import pytest
from helpers import call_csv, fresh_date
from smtp_server import Inbox, running_smtp

from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import Services
from connectbatch.settings import Settings, SmtpSettings
from tests.helpers.store import results_of

N = 10


def test_a_discarded_batch_gets_a_results_file_that_says_nothing_was_loaded(
    services: Services, make_connection
) -> None:
    """The results file is the partner's answer for a file; after a reviewer discards a held
    batch it must not keep saying QUARANTINED "held for review" (the partner would wait for
    a decision that was already made): a Line 0 FILE_REJECTED says it was discarded and by
    whom, with the reviewer's note, and the rows the parser refused keep their reasons."""
    make_connection("Acme")
    held = services.ingest_bytes("Acme", "neg.csv", call_csv(N, overrides={0: {"SaleAmount": "-1"}}))
    assert held.review == "quarantined"

    services.discard(held.id, note="wrong amounts, send a corrected file", actor="bob")

    rows, summary = results_of(services, "Acme", held.id)
    assert "QUARANTINED" not in {r["Status"] for r in rows}
    [file_line] = [r for r in rows if r["Line"] == "0"]
    assert file_line["Status"] == "FILE_REJECTED"
    assert "discarded by bob" in file_line["Reason"]
    assert "wrong amounts, send a corrected file" in file_line["Reason"]
    assert "Nothing of this file was loaded" in file_line["Reason"]
    assert summary["status"] == "discarded"
    assert summary["rows_accepted"] == 0 and summary["actions_created"] == 0
    assert not services.actions("Acme")


def test_a_discarded_batch_keeps_the_rows_the_parser_refused(services: Services, make_connection) -> None:
    """Held for its reject rate, then discarded: the partner still learns which line was
    unreadable and why, beside the Line 0 row that says the file was not loaded."""
    make_connection("Acme")
    held = services.ingest_bytes("Acme", "bad.csv", call_csv(N, overrides={1: {"CallDuration": "abc"}}))
    assert held.review == "quarantined"

    services.discard(held.id, note=None, actor="bob")

    rows, summary = results_of(services, "Acme", held.id)
    assert [(r["Line"], r["Status"]) for r in rows] == [("0", "FILE_REJECTED"), ("3", "REJECTED")]
    assert "CallDuration" in rows[1]["Reason"]
    assert summary["rows_rejected"] == 1


# ------------------------------------------------------------------ the return e-mail


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, SmtpSettings]]:
    with running_smtp() as server:
        yield server


@pytest.fixture
def inbox(smtp_server: tuple[Inbox, SmtpSettings]) -> Inbox:
    return smtp_server[0]


@pytest.fixture
def mailing(smtp_server: tuple[Inbox, SmtpSettings], settings: Settings) -> Services:
    """Services whose results e-mail goes to the real SMTP server `inbox` listens on."""
    return Services(replace(settings, smtp=smtp_server[1]))


def _results_text(message: EmailMessage) -> str:
    part = next(p for p in message.iter_attachments() if (p.get_filename() or "").endswith(".results.csv"))
    content = part.get_content()
    return content if isinstance(content, str) else content.decode()


def test_a_released_batch_mails_the_partner_its_final_results(inbox: Inbox, mailing: Services) -> None:
    """The partner's last mail said "Needs review" with every row QUARANTINED; when a
    reviewer releases the batch, the final results (ActionIds, ACCEPTED) must reach them
    too, or a partner without sync-back never learns its file was loaded."""
    mailing.create_connection(
        Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
                   return_email="ops@acme.example")
    )  # fmt: skip
    # held for a talk time over the call's (a negative amount would stay out on release)
    held = mailing.ingest_bytes("Acme", "neg.csv", call_csv(N, overrides={0: {"CallerId": "1.55512E+10"}}))
    [first] = inbox.messages
    assert "Needs review" in first["Subject"]
    inbox.clear()

    mailing.release(held.id, note="duration ok", actor="bob")

    [message] = inbox.messages
    assert message["To"] == "ops@acme.example"
    assert f"run {held.id}" in message["Subject"] and "Completed" in message["Subject"]
    text = _results_text(message)
    assert "QUARANTINED" not in text and text.count("ACCEPTED") == N


def test_a_discarded_batch_mails_the_partner_that_nothing_was_loaded(inbox: Inbox, mailing: Services) -> None:
    """Discarded: the partner is told once, with the reviewer's note, that the file was not
    loaded and must be sent again."""
    mailing.create_connection(
        Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
                   return_email="ops@acme.example")
    )  # fmt: skip
    held = mailing.ingest_bytes("Acme", "neg.csv", call_csv(N, overrides={0: {"SaleAmount": "-1"}}))
    inbox.clear()

    mailing.discard(held.id, note="wrong amounts", actor="bob")

    [message] = inbox.messages
    body = message.get_body(("plain",))
    assert body is not None and "discarded by bob: wrong amounts" in body.get_content()
    text = _results_text(message)
    assert "FILE_REJECTED" in text and "QUARANTINED" not in text


def test_results_go_to_the_partners_return_address_when_the_connection_has_none(
    inbox: Inbox, mailing: Services
) -> None:
    """A partner's return address (`partner add --email`) is where its sync-back mail and
    delivery alerts go; the results of its files must go there too, or a partner set up with
    only that address gets status updates but never the answer to a file it sent."""
    mailing.add_partner("Acme Calls", "vendor", return_email="feeds@acme.example")
    mailing.create_connection(
        Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
                   partner_id=mailing.partner("Acme Calls").id)
    )  # fmt: skip

    run = mailing.ingest_bytes("Acme", "calls.csv", call_csv(3))

    [message] = inbox.messages
    assert message["To"] == "feeds@acme.example"
    assert f"run {run.id}" in message["Subject"]
    connection = mailing.connection("Acme")
    assert mailing.dry_run_return_address(connection) == "feeds@acme.example"


def test_the_connections_own_return_address_comes_before_the_partners(
    inbox: Inbox, mailing: Services
) -> None:
    """The partner's address is the fallback, not an override: a connection that names its
    own return address keeps getting its results there."""
    mailing.add_partner("Acme Calls", "vendor", return_email="feeds@acme.example")
    mailing.create_connection(
        Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
                   partner_id=mailing.partner("Acme Calls").id, return_email="ops@acme.example")
    )  # fmt: skip

    mailing.ingest_bytes("Acme", "calls.csv", call_csv(3))

    assert [m["To"] for m in inbox.messages] == ["ops@acme.example"]


# ------------------------------------------------------------------ released re-sent records


def test_a_released_batch_answers_every_line_even_the_records_already_loaded(
    services: Services, make_connection
) -> None:
    """A file re-sending 4 loaded records among 6 is held; the reviewer releases it and the 4
    stay out (nothing doubled). Those 4 lines used to vanish from the results file (6 rows in,
    2 answered), so the partner could not tell them from lost rows: each must come back
    REJECTED under its own key, saying it was already loaded, and the counts must add up."""
    make_connection("Acme")
    services.ingest_bytes("Acme", "a.csv", call_csv(4, prefix="a"))
    held = services.ingest_bytes(
        "Acme", "a2.csv", call_csv(6, prefix="a", overrides={0: {"SaleAmount": "99"}})
    )
    assert held.review == "quarantined"

    released = services.release(held.id, note="ok", actor="bob")

    rows, summary = results_of(services, "Acme", held.id)
    assert [r["Line"] for r in rows] == ["2", "3", "4", "5", "6", "7"]
    assert [r["Status"] for r in rows] == ["REJECTED"] * 4 + ["ACCEPTED"] * 2
    assert [r["CallSessionId"] for r in rows] == [f"a-{i:04d}" for i in range(6)]
    assert all("already loaded" in r["Reason"] for r in rows[:4])
    assert summary["rows_accepted"] + summary["rows_rejected"] == 6
    assert summary["actions_created"] == summary["rows_accepted"] == 2
    assert released.rows_duplicate == 4 and services.count_actions("Acme") == 6
    amounts = {a.source_key: str(a.amount) for a in services.actions("Acme")}
    assert amounts["a-0000"] == "10.00"  # the stored record was not replaced


# ------------------------------------------------------------------ status files across a kill

KILLED_SYNC = r"""
import os, signal, sys
from pathlib import Path
from connectbatch.settings import Settings
from connectbatch.services import Services
from connectbatch.pipeline import syncback as sb
from connectbatch.store import syncback as store

home, hook = Path(sys.argv[1]), sys.argv[2]
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
if hook == "record":  # the status file is written, the ledger row not committed
    store.record = die
else:  # committed, the file not yet where the partner collects it
    sb.publish = die
Services(Settings(home=home, lock_timeout=10.0)).sync_back_now("Acme")
"""


def _killed_sync(settings: Settings, hook: str) -> None:
    import signal
    import subprocess
    import sys

    child = subprocess.run(
        [sys.executable, "-c", KILLED_SYNC, str(settings.home), hook],
        capture_output=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],  # this checkout's connectbatch
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()


def _reported_lines(folder: Path) -> list[str]:
    """Every data row of every status file a partner's login can collect from `folder`."""
    found: list[str] = []
    for path in sorted(folder.glob("status-*.csv")):
        found += [
            f"{r['File']}:{r['Line']}:{r['Change']}" for r in csv.DictReader(io.StringIO(path.read_text()))
        ]
    return found


@pytest.mark.parametrize("hook", ["record", "publish"])
def test_a_sync_back_killed_midway_reports_each_row_exactly_once(
    settings: Settings, services: Services, make_connection, hook: str
) -> None:
    """The engine is SIGKILLed in the middle of a sync-back, once before its ledger row
    commits and once after: the partner's "Pull from us" folder must then hold every row
    exactly once after the next sync (before, a file written but not recorded stayed there
    and the next sync wrote the same rows again: the partner loaded them twice)."""
    make_connection("Acme", sync_back=["files"])
    pickup, _login = services.create_connection(
        Connection("Pickup", "call_conversions", Direction.OUTBOUND, Method.SFTP, Methodology.PULL_FROM_US)
    )
    services.ingest_bytes("Acme", "calls.csv", call_csv(3))

    _killed_sync(settings, hook)
    Services(settings).sync_back_now("Acme", trigger="test")  # the restarted engine's next sync

    folder = settings.outbound / str(pickup.id)
    assert _reported_lines(folder) == ["calls.csv:2:accepted", "calls.csv:3:accepted", "calls.csv:4:accepted"]
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]  # no half-done file left
    Services(settings).sync_back_now("Acme", trigger="test")
    assert len(_reported_lines(folder)) == 3


# ------------------------------------------------------------------ supersede: unchanged rows


def test_a_record_sent_again_unchanged_is_answered_with_its_action(
    services: Services, make_connection
) -> None:
    """In supersede mode a record sent again exactly as stored changes nothing. Its results
    line used to read ACCEPTED with an empty ActionId, as if a row had been taken without
    an action; it must name the action the record already has and say it was unchanged."""
    make_connection("Acme", redelivery="supersede")
    when = fresh_date(2)  # both files carry the same EventDate, to the second
    first = services.ingest_bytes("Acme", "a.csv", call_csv(3, prefix="a", event_date=when))
    labels = {a.source_key: a.label for a in services.actions("Acme")}

    again = services.ingest_bytes("Acme", "a2.csv", call_csv(4, prefix="a", event_date=when))

    assert first.status is again.status is RunStatus.COMPLETED
    rows, _summary = results_of(services, "Acme", again.id)
    assert [r["Status"] for r in rows] == ["ACCEPTED"] * 4
    assert all(r["ActionId"] for r in rows), rows
    for r in rows[:3]:
        assert r["ActionId"] == labels[r["CallSessionId"]]
        assert r["Reason"].startswith("unchanged")
    assert rows[3]["Reason"] == "" and services.count_actions("Acme") == 4
