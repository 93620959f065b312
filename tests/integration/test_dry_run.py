"""Partner dry runs (issue 12, part 3) on the real hosted SFTP and FTP servers and the real
Dovecot mailbox: a file dropped in `dry-run/` or mailed to the `+dryrun` address is checked
with the connection's own settings and already-loaded keys, nothing is stored (data rows,
actions, runs and ledger entries are counted before and after), and the report comes back as
a results file beside it and by e-mail."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import email as _email
import ftplib
import gzip
import io
import ssl
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path

import paramiko
import pytest
from dovecot import DovecotServer, running_dovecot
from helpers import call_csv, fresh_date, modifications_csv, to_csv
from smtp_server import Inbox, running_smtp

from connectbatch.engine import Engine, MailboxSettings
from connectbatch.models import Connection, Direction, Method, Methodology, Redelivery
from connectbatch.pipeline import dryrun
from connectbatch.services import Provisioned, Services
from connectbatch.settings import Settings, SmtpSettings
from connectbatch.transfer.push.ftp import HostedFtpServer
from connectbatch.transfer.push.gateway import Gateway
from connectbatch.transfer.push.sftp import HostedSftpServer, host_key_path

HOST = "127.0.0.1"
TIMEOUT = 60.0


# --- helpers -------------------------------------------------------------------------------------


def stored(services: Services) -> dict[str, int]:
    """Everything a load would add: data rows, actions, runs, ledger entries."""
    with services.db.connect() as con:
        return {
            table: int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
            for table in ("data_call_conversions", "actions", "runs", "files", "rejects")
        }


def rows_of(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def by_line(data: bytes) -> dict[int, dict[str, str]]:
    return {int(r["Line"]): r for r in rows_of(data)}


def push(
    services: Services, name: str, method: Method, data_type: str = "call_conversions", **attrs: object
) -> tuple[Connection, Provisioned]:
    connection, login = services.create_connection(
        Connection(name, data_type, Direction.INBOUND, method, Methodology.PUSH, **attrs)  # type: ignore[arg-type]
    )
    assert login is not None
    return connection, login


def trial_file() -> bytes:
    """Five rows against a connection that loaded live-0000..0002: three repeats, one new
    row, one row the parser rejects (a CampaignId that is not a number)."""
    return call_csv(5, prefix="live", overrides={4: {"CampaignId": "abc"}})


def check_report(data: bytes) -> None:
    rows = by_line(data)
    assert rows[0]["Status"] == "DRY_RUN" and "nothing was stored" in rows[0]["Reason"]
    assert [rows[n]["Status"] for n in (2, 3, 4)] == ["WOULD_BE_DUPLICATE"] * 3
    assert "already loaded" in rows[2]["Reason"] and rows[2]["CallSessionId"] == "live-0000"
    assert rows[5]["Status"] == "WOULD_BE_HELD"  # a good row, in a batch the repeats would hold
    assert rows[6]["Status"] == "WOULD_BE_REJECTED" and "CampaignId" in rows[6]["Reason"]
    assert list(rows[0]) == ["Line", "CallSessionId", "VendorEventId", "ActionId", "Status", "Reason"]


@contextlib.contextmanager
def sftp_client(port: int, login: Provisioned) -> Iterator[paramiko.SFTPClient]:
    transport = paramiko.Transport((HOST, port))
    try:
        transport.connect(username=login.username, password=login.password)
        sftp = paramiko.SFTPClient.from_transport(transport)
        assert sftp is not None
        with contextlib.closing(sftp):
            yield sftp
    finally:
        transport.close()


@pytest.fixture
def sftp_hosted(tmp_path: Path) -> Iterator[tuple[Services, Gateway, HostedSftpServer]]:
    services = Services(Settings(home=tmp_path / "home", lock_timeout=10.0, sftp_port=0))
    gateway = Gateway(services)
    server = HostedSftpServer(gateway, HOST, 0, host_key_path(services.settings.home)).start()
    try:
        yield services, gateway, server
    finally:
        server.stop()
        gateway.close()


# --- SFTP ----------------------------------------------------------------------------------------


def test_a_dry_run_over_sftp_stores_nothing_and_answers_beside_the_file(
    sftp_hosted: tuple[Services, Gateway, HostedSftpServer],
) -> None:
    services, gateway, server = sftp_hosted
    _connection, login = push(services, "Acme", Method.SFTP)
    with sftp_client(server.port, login) as sftp:
        sftp.putfo(io.BytesIO(call_csv(3, prefix="live")), "calls_live.csv")
    gateway.wait(TIMEOUT)
    before = stored(services)
    assert before["data_call_conversions"] == 3 and before["actions"] == 3

    with sftp_client(server.port, login) as sftp:
        sftp.mkdir(dryrun.FOLDER)  # the partner makes the folder, as any folder
        sftp.putfo(io.BytesIO(trial_file()), "dry-run/calls_trial.csv")
        gateway.wait(TIMEOUT)
        assert sftp.listdir(dryrun.FOLDER) == ["calls_trial.csv.results.csv"]  # the upload went
        with sftp.open("dry-run/calls_trial.csv.results.csv") as remote:
            report = remote.read()

    assert stored(services) == before  # no data row, action, run, ledger entry or reject
    check_report(report)
    [event] = services.connection_events("Acme")
    assert event.kind == dryrun.EVENT_KIND and "calls_trial.csv" in event.message and "sftp" in event.message
    assert len(services.runs("Acme")) == 1


def test_a_hostile_name_in_dry_run_gets_a_harmless_results_name(
    sftp_hosted: tuple[Services, Gateway, HostedSftpServer],
) -> None:
    services, gateway, server = sftp_hosted
    _connection, login = push(services, "Acme", Method.SFTP)
    with sftp_client(server.port, login) as sftp:
        sftp.mkdir(dryrun.FOLDER)
        sftp.putfo(io.BytesIO(call_csv(2, prefix="h")), "dry-run/=cmd|' \x1b[31m\n.csv")
        gateway.wait(TIMEOUT)
        [name] = sftp.listdir(dryrun.FOLDER)
    assert name.endswith(".csv.results.csv") and all(c.isalnum() or c in "-_." for c in name), name
    assert stored(services)["data_call_conversions"] == 0


def test_a_dry_run_folder_named_in_capitals_is_a_dry_run_and_a_folder_in_the_way_is_answered_beside(
    sftp_hosted: tuple[Services, Gateway, HostedSftpServer],
) -> None:
    """Found by an attacker audit: a file in `DRY-RUN/` was loaded for real; and a folder
    named like the results file made the dry run fail, with no answer and a temporary file
    left in the partner's folder."""
    services, gateway, server = sftp_hosted
    _connection, login = push(services, "Acme", Method.SFTP)
    with sftp_client(server.port, login) as sftp:
        sftp.mkdir("DRY-RUN")
        sftp.mkdir("DRY-RUN/calls.csv.results.csv")
        sftp.putfo(io.BytesIO(trial_file()), "DRY-RUN/calls.csv")
        gateway.wait(TIMEOUT)
        listed = sorted(sftp.listdir("DRY-RUN"))
        with sftp.open("DRY-RUN/calls.csv.results-2.csv") as remote:
            report = remote.read()
    assert listed == ["calls.csv.results-2.csv", "calls.csv.results.csv"]  # the upload went, no .tmp-
    assert stored(services)["data_call_conversions"] == 0 and services.runs("Acme") == []
    assert report.startswith(b'"Line","CallSessionId"') and b"DRY_RUN" in report


def test_a_dry_run_is_not_a_way_around_the_size_limit(tmp_path: Path) -> None:
    services = Services(Settings(home=tmp_path / "home", lock_timeout=10.0, sftp_port=0, max_file_bytes=1024))
    gateway = Gateway(services)
    server = HostedSftpServer(gateway, HOST, 0, host_key_path(services.settings.home)).start()
    try:
        _connection, login = push(services, "Small", Method.SFTP)
        with sftp_client(server.port, login) as sftp:
            sftp.mkdir(dryrun.FOLDER)
            with pytest.raises(OSError), sftp.open("dry-run/big.csv", "w") as remote:
                remote.write(call_csv(40, prefix="big"))
            # a small .gz that unpacks past the limit: parsed with the same limit, refused
            bomb = gzip.compress(call_csv(40, prefix="bomb"))
            assert len(bomb) < 1024
            sftp.putfo(io.BytesIO(bomb), "dry-run/bomb.csv.gz")
            gateway.wait(TIMEOUT)
            assert sftp.listdir(dryrun.FOLDER) == ["bomb.csv.gz.results.csv"]
            with sftp.open("dry-run/bomb.csv.gz.results.csv") as remote:
                [row] = rows_of(remote.read())
        assert row["Status"] == "FILE_WOULD_BE_REJECTED" and "limit" in row["Reason"]
        assert stored(services)["runs"] == 0
    finally:
        server.stop()
        gateway.close()


def test_a_shared_login_routes_a_dry_run_like_the_file_it_tries(
    sftp_hosted: tuple[Services, Gateway, HostedSftpServer],
) -> None:
    """Two push connections share one login ('Calls': calls_*.csv anywhere, 'Daily': *.csv
    in daily/): daily/dry-run/report.csv is a dry run of 'Daily', dry-run/calls_1.csv of
    'Calls'; neither is loaded."""
    services, gateway, server = sftp_hosted
    calls, login = push(services, "Calls", Method.SFTP, pattern="calls_*.csv")
    [credential] = services.credentials(calls.id)
    daily, _ = services.create_connection(
        Connection("Daily", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
                   folder="daily", pattern="*.csv"),
        reuse_credential=credential.id,
    )  # fmt: skip
    with sftp_client(server.port, login) as sftp:
        for folder in ("daily", "daily/dry-run", "dry-run"):
            sftp.mkdir(folder)
        sftp.putfo(io.BytesIO(call_csv(2, prefix="d")), "daily/dry-run/report.csv")
        sftp.putfo(io.BytesIO(call_csv(3, prefix="c")), "dry-run/calls_1.csv")
        gateway.wait(TIMEOUT)
        assert sftp.listdir("daily/dry-run") == ["report.csv.results.csv"]
        assert sftp.listdir("dry-run") == ["calls_1.csv.results.csv"]
    assert [e.kind for e in services.connection_events(daily.id)] == [dryrun.EVENT_KIND]
    assert [e.kind for e in services.connection_events(calls.id)] == [dryrun.EVENT_KIND]
    assert "report.csv" in services.connection_events(daily.id)[0].message
    assert stored(services)["runs"] == 0 and stored(services)["data_call_conversions"] == 0


# --- FTP -----------------------------------------------------------------------------------------


def test_a_dry_run_over_ftp_stores_nothing_and_answers_beside_the_file(services: Services) -> None:
    gateway = Gateway(services)
    connection, login = push(services, "Acme", Method.FTP)
    try:
        with HostedFtpServer(gateway, HOST, 0) as server:
            assert server.tls_cert is not None
            context = ssl.create_default_context(cafile=str(server.tls_cert))

            def client() -> ftplib.FTP_TLS:
                ftp = ftplib.FTP_TLS(context=context)
                ftp.connect(HOST, server.port, timeout=20)
                ftp.login(login.username, login.password)
                ftp.prot_p()
                return ftp

            with client() as ftp:
                ftp.storbinary("STOR calls_live.csv", io.BytesIO(call_csv(3, prefix="live")))
                gateway.wait(TIMEOUT)
            before = stored(services)
            assert before["data_call_conversions"] == 3
            with client() as ftp:
                ftp.mkd(dryrun.FOLDER)
                ftp.storbinary("STOR dry-run/calls_trial.csv", io.BytesIO(trial_file()))
                gateway.wait(TIMEOUT)
                assert ftp.nlst(dryrun.FOLDER) == ["dry-run/calls_trial.csv.results.csv"] or ftp.nlst(
                    dryrun.FOLDER
                ) == ["calls_trial.csv.results.csv"]
                out = io.BytesIO()
                ftp.retrbinary("RETR dry-run/calls_trial.csv.results.csv", out.write)
    finally:
        gateway.close()
    assert stored(services) == before
    check_report(out.getvalue())
    assert [e.kind for e in services.connection_events(connection.name)] == [dryrun.EVENT_KIND]


# --- what is checked: the connection's own settings and keys, no one else's ----------------------


def test_only_the_connections_own_partner_keys_are_checked(services: Services, tmp_path: Path) -> None:
    services.add_partner("Other partner", "publisher")
    theirs, _ = push(services, "Theirs", Method.SFTP, partner_id=services.partner("Other partner").id)
    ours, _ = push(services, "Ours", Method.SFTP)
    secret = tmp_path / "secret.csv"
    secret.write_bytes(call_csv(2, prefix="secret"))
    services.ingest_file(theirs.id, secret)
    their_action = services.actions("Theirs")[0]

    dry = services.dry_run_file(ours.id, secret)
    assert {r.status for r in dry.rows} == {dryrun.Would.ACCEPT}  # not "already loaded"

    mods, _ = push(services, "Our returns", Method.SFTP, "action_modifications")
    probe = tmp_path / "probe.csv"
    probe.write_bytes(modifications_csv([(their_action.label, "1.00", "probe")]))
    dry = services.dry_run_file(mods.id, probe)
    [row] = dry.rows
    assert row.status is dryrun.Would.REJECT and row.reason == "ActionId: no such action"
    assert services.actions("Theirs")[0].amount == their_action.amount


def test_supersede_mode_reports_replaced_and_unchanged_rows(services: Services, tmp_path: Path) -> None:
    connection, _ = push(services, "Fixes", Method.SFTP, redelivery=Redelivery.SUPERSEDE)
    first = tmp_path / "first.csv"
    when = fresh_date(1)
    first.write_bytes(call_csv(2, prefix="fix", event_date=when))
    services.ingest_file(connection.id, first)
    before = stored(services)
    second = tmp_path / "second.csv"
    second.write_bytes(call_csv(3, prefix="fix", event_date=when, overrides={1: {"SaleAmount": "99.00"}}))

    dry = services.dry_run_file(connection.id, second)

    statuses = {r.line: r.status for r in dry.rows}
    assert statuses == {2: dryrun.Would.UNCHANGED, 3: dryrun.Would.REPLACE, 4: dryrun.Would.ACCEPT}
    assert next(r for r in dry.rows if r.line == 3).action_id is not None
    assert dry.verdict is dryrun.Verdict.LOAD
    assert stored(services) == before


def test_a_file_whose_every_row_is_rejected_would_be_rejected_not_held(
    services: Services, tmp_path: Path
) -> None:
    """Nothing would be left for a reviewer to release: the dry run says what the ingest
    does (the file refused, each row's reason), not "would be held for review"."""
    connection, _ = push(services, "Acme", Method.SFTP)
    path = tmp_path / "bad.csv"
    path.write_bytes(call_csv(2, overrides={0: {"CampaignId": "x"}, 1: {"CampaignId": "y"}}))
    dry = services.dry_run_file(connection.id, path)
    assert dry.verdict is dryrun.Verdict.REJECT
    assert [r.status for r in dry.rows] == [dryrun.Would.REJECT] * 2
    run = services.ingest_file(connection.id, path)
    assert (run.status.value, run.review) == ("Failed", None)


def test_a_modification_dated_before_the_newest_change_would_be_rejected(
    services: Services, tmp_path: Path
) -> None:
    """The dry run judges ModificationDate as the load does: a change dated before the one
    the action carries (stored, or earlier in the same file) would be rejected, so would a
    date in the future; the newer one is what the load keeps."""
    calls, _ = push(services, "Acme", Method.SFTP)
    path = tmp_path / "calls.csv"
    path.write_bytes(call_csv(2))
    services.ingest_file(calls.id, path)
    first, second = services.actions("Acme")
    now = dt.datetime.now(dt.UTC)
    services.modify_action(first.id, "20.00", reason="by hand", actor="alice")
    mods, _ = push(services, "Returns", Method.SFTP, "action_modifications")
    at = [(now + dt.timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ") for h in (-2, -1, -3, 30)]
    rows = [
        {"ActionId": first.label, "Amount": "30.00", "Reason": "older", "ModificationDate": at[0]},
        {"ActionId": second.label, "Amount": "31.00", "Reason": "new", "ModificationDate": at[1]},
        {"ActionId": second.label, "Amount": "32.00", "Reason": "older line", "ModificationDate": at[2]},
        {"ActionId": second.label, "Amount": "0", "Reason": "future", "ModificationDate": at[3]},
    ]
    file = tmp_path / "mods.csv"
    file.write_bytes(to_csv(rows, ["ActionId", "Amount", "Reason", "ModificationDate"]))

    dry = {r.line: r for r in services.dry_run_file(mods.id, file).rows}

    assert {line: r.status for line, r in dry.items()} == {
        2: dryrun.Would.REJECT, 3: dryrun.Would.ACCEPT, 4: dryrun.Would.REJECT, 5: dryrun.Would.REJECT,
    }  # fmt: skip
    assert "before the newer change" in dry[2].reason and "before the newer change" in dry[4].reason
    assert "in the future" in dry[5].reason
    run = services.ingest_file(mods.id, file)
    assert (run.actions_changed, run.rows_rejected) == (1, 3)
    assert [a.amount for a in services.actions("Acme")] == [Decimal("20.00"), Decimal("31.00")]


def test_formulas_in_partner_cells_are_neutralised(services: Services, tmp_path: Path) -> None:
    connection, _ = push(services, "Acme", Method.SFTP)
    path = tmp_path / "f.csv"
    path.write_bytes(call_csv(1, overrides={0: {"CallSessionId": "=HYPERLINK(1)"}}))
    dry = services.dry_run_file(connection.id, path)
    text = dry.csv_bytes().decode()
    assert "'=HYPERLINK(1)" in text


# --- e-mail: the +dryrun address -----------------------------------------------------------------


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    with running_dovecot() as running:
        yield running


@pytest.fixture
def smtp_inbox() -> Iterator[tuple[Inbox, SmtpSettings]]:
    with running_smtp() as found:
        yield found


def partner_mail(to: str, name: str, data: bytes, sender: str = "reports@vendor.example") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = "trial file"
    message["Message-ID"] = _email.utils.make_msgid(domain="vendor.example")
    message.set_content("please check")
    message.add_attachment(data, maintype="text", subtype="csv", filename=name)
    return message.as_bytes()


def test_mail_to_the_dryrun_address_is_answered_with_the_report_and_stores_nothing(
    dovecot: DovecotServer, services: Services, smtp_inbox: tuple[Inbox, SmtpSettings], tmp_path: Path
) -> None:
    box = dovecot.add_user()
    svc = Services(replace(services.settings, inbound_mailbox=box.address, smtp=smtp_inbox[1]))
    connection, _ = push(
        svc, "Vendor A", Method.EMAIL, pattern="calls_*.csv", return_email="reports@vendor.example"
    )
    live = tmp_path / "live.csv"
    live.write_bytes(call_csv(3, prefix="live"))
    svc.ingest_file(connection.id, live)
    inbox = smtp_inbox[0]
    inbox.clear()  # the live file's own results mail
    address = svc.dryrun_address(connection)
    assert address == svc.inbound_address(connection).replace("@", "+dryrun@")
    dovecot.append(box, partner_mail(address, "trial.csv", trial_file()))
    before = stored(svc)

    engine = Engine(svc, MailboxSettings(dovecot.host, dovecot.port, box.username, box.password, "plain"))
    assert engine.poll_mailbox() == []  # no run: a dry run is not a delivery

    assert stored(svc) == before
    [(envelope_sender, answer)] = inbox.envelopes
    assert envelope_sender == "<>" and answer["To"] == "reports@vendor.example"
    assert answer["Auto-Submitted"] == "auto-replied" and "dry run" in answer["Subject"]
    [attachment] = list(answer.iter_attachments())
    assert attachment.get_filename() == "trial.csv.results.csv"
    check_report(attachment.get_content().encode() if isinstance(attachment.get_content(), str)
                 else attachment.get_content())  # fmt: skip
    [event] = svc.connection_events("Vendor A")
    assert event.kind == dryrun.EVENT_KIND and event.answered

    assert engine.poll_mailbox() == []  # marked processed: checked and answered once
    assert len(inbox.envelopes) == 1 and len(svc.connection_events("Vendor A")) == 1


def test_a_dry_run_mailed_by_a_sender_the_connection_does_not_name_is_answered_to_the_partner(
    dovecot: DovecotServer, services: Services, smtp_inbox: tuple[Inbox, SmtpSettings]
) -> None:
    """Security audit: the report says which records are loaded (WOULD_BE_DUPLICATE), and it
    went to whoever wrote to the +dryrun address, made from the connection's name: anyone
    could learn which of a partner's calls exist. It goes to the partner's return address."""
    box = dovecot.add_user()
    svc = Services(replace(services.settings, inbound_mailbox=box.address, smtp=smtp_inbox[1]))
    connection, _ = push(
        svc, "Vendor B", Method.EMAIL, pattern="calls_*.csv", return_email="ops@vendor.example"
    )
    inbox = smtp_inbox[0]
    dovecot.append(
        box, partner_mail(svc.dryrun_address(connection), "t.csv", trial_file(), "spy@evil.example")
    )

    Engine(
        svc, MailboxSettings(dovecot.host, dovecot.port, box.username, box.password, "plain")
    ).poll_mailbox()

    assert [answer["To"] for answer in inbox.messages] == ["ops@vendor.example"]
