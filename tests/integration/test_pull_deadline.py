"""Every pull ends by its deadline (CONNECTBATCH_PULL_DEADLINE), against real servers on
127.0.0.1 (OpenSSH's sshd, Dovecot, an FTP server) behind a relay that, part way through,
passes the server's bytes on slowly for ever: no read waits long enough for its timeout, so
nothing else ends such a pull. It ends as a Failed run saying why, and the next pull, at
full speed, takes the file."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import TYPE_CHECKING

import ftpd
import pytest
from dovecot import running_dovecot
from helpers import call_csv
from hostile import pull_within
from peers import TrickleProxy

from connectbatch.engine import Engine, MailboxSettings
from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import CredentialInput, Services
from connectbatch.settings import Settings
from connectbatch.transfer.pull import stopping
from connectbatch.transfer.specs import FtpSpec, FtpTls, ImapSecurity, ImapSpec, SftpSpec, TransferSpec

if TYPE_CHECKING:
    from sshd import Sshd

pytest_plugins = ["sshd"]

DEADLINE = 4.0
ROWS = 15_000  # about 2 MB: minutes at the trickle's pace
OLD = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)


@dataclass
class Partner:
    """A partner server holding one file, reached through `proxy`."""

    method: Method
    spec: TransferSpec
    folder: str
    user: str
    password: str
    proxy: TrickleProxy


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", lock_timeout=10.0, pull_deadline=DEADLINE)


@pytest.fixture
def sftp_partner(sshd_server: Sshd, sftp_folder: Path) -> Iterator[Partner]:
    sshd_server.put(sftp_folder, "Calls_2026_a.csv", call_csv(ROWS), OLD)
    # past the handshake and the listing; then 4 KB/s: each SSH packet comes within the
    # channel's 30 s timeout, so no read ever times out
    proxy = TrickleProxy((sshd_server.host, sshd_server.port), fast=40_000, chunk=2048, every=0.5)
    yield Partner(Method.SFTP, SftpSpec(), str(sftp_folder), sshd_server.user, sshd_server.password, proxy)
    proxy.close()


@pytest.fixture
def imap_partner() -> Iterator[Partner]:
    with running_dovecot() as server:
        user = server.add_user()
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "p@partner.example", user.address, "calls"
        message.set_content("Files attached.\n")
        message.add_attachment(call_csv(300), maintype="text", subtype="csv", filename="Calls_2026_a.csv")
        server.append(user, message.as_bytes(policy=SMTP))
        proxy = TrickleProxy((server.host, server.port), fast=4000, chunk=1, every=1.0)
        yield Partner(
            Method.EMAIL, ImapSpec(security=ImapSecurity.PLAIN), "INBOX", user.username, user.password, proxy
        )
        proxy.close()


@pytest.fixture
def ftp_partner() -> Iterator[Partner]:
    with ftpd.any_server() as server:
        server.put("/Calls_2026_a.csv", call_csv(300), OLD)
        # the control connection: past the greeting, then a byte a second
        proxy = TrickleProxy((server.host, server.port), fast=60, chunk=1, every=1.0)
        yield Partner(Method.FTP, FtpSpec(tls=FtpTls.NONE), "/", server.username, server.password, proxy)
        proxy.close()


def connect(services: Services, partner: Partner) -> Connection:
    draft = Connection(
        "Slow partner", "call_conversions", Direction.INBOUND, partner.method, Methodology.PULL,
        host="127.0.0.1", port=partner.proxy.port, folder=partner.folder, pattern="Calls_*.csv",
        transfer=partner.spec,
    )  # fmt: skip
    created, _ = services.create_connection(draft, CredentialInput("partner", partner.user, partner.password))
    return created


def check_cut_then_taken(services: Services, partner: Partner) -> None:
    connection = connect(services, partner)

    cut = pull_within(services, connection, 120)

    assert partner.proxy.trickling.is_set()  # it was held by the trickle, not failed before
    assert cut.status is RunStatus.FAILED and cut.reason == stopping.overdue(DEADLINE)
    assert "CONNECTBATCH_PULL_DEADLINE" in (cut.reason or "")
    assert [f for f in services.run_files(cut.id) if f.state == "loaded"] == []
    [credential] = services.credentials(connection.id)
    assert credential.status != "Error"  # the login worked; the server was slow

    partner.proxy.throttled = False  # the next try, at full speed, takes the file
    again = pull_within(services, connection, 120)
    assert again.status is RunStatus.COMPLETED and again.files_loaded == 1


def test_an_sftp_download_trickled_for_ever_ends_at_the_deadline(
    services: Services, sftp_partner: Partner
) -> None:
    check_cut_then_taken(services, sftp_partner)


def test_an_imap_fetch_trickled_for_ever_ends_at_the_deadline(
    services: Services, imap_partner: Partner
) -> None:
    check_cut_then_taken(services, imap_partner)


def test_an_ftp_session_trickled_for_ever_ends_at_the_deadline(
    services: Services, ftp_partner: Partner
) -> None:
    check_cut_then_taken(services, ftp_partner)


def test_a_mailbox_poll_trickled_for_ever_ends_at_the_deadline(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The engine's mailbox job reads the shared inbound mailbox for each e-mail push
    connection, then its `+dryrun` address. That second read was no pull: no deadline bounded
    it (nor did the engine's stop reach it), and a mailbox answering a byte a second held the
    job for ever. Both reads now end by the deadline."""
    with running_dovecot() as server:
        box = server.add_user()
        services = Services(replace(settings, inbound_mailbox=box.address))
        draft = Connection("Vendor A", "call_conversions", Direction.INBOUND, Method.EMAIL, Methodology.PUSH,
                           pattern="calls_*.csv")  # fmt: skip
        services.create_connection(draft)
        proxy = TrickleProxy((server.host, server.port), fast=0, chunk=1, every=1.0)
        engine = Engine(
            services, MailboxSettings("127.0.0.1", proxy.port, box.username, box.password, "plain")
        )
        try:
            polled: list[object] = []
            thread = threading.Thread(target=lambda: polled.append(engine.poll_mailbox()), daemon=True)
            thread.start()
            thread.join(120)
            assert not thread.is_alive(), "the mailbox poll was still going after 120 s"
            assert polled == [[]]
            assert caplog.text.count(stopping.overdue(DEADLINE)) == 2  # both reads say why
            assert "dry-run mailbox poll failed" not in caplog.text
        finally:
            proxy.close()
