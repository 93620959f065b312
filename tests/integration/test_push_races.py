"""Races between partners' sessions and the gateway on our hosted SFTP and FTP(S) servers,
with real paramiko and ftplib clients on 127.0.0.1 against the real servers and `Gateway`.

* **A file open for writing is never loaded nor removed** (`push.writers`): a name sent again
  while its previous upload waits for its ingest is loaded once, in full, when the new upload
  ends (the earlier version, never loaded, is superseded); two sessions writing one name load
  it once the last of them closes.
* **A deleted login or connection stops the sessions already in**: the next file opened for
  writing, and an upload completing, are refused saying why (SFTP permission denied, FTP 550),
  the session ends, and nothing is loaded or left behind.

The gateway's ingests are held back where a test needs an upload to wait for its turn: its
`ingest` is the real `Services.ingest_files`, behind a gate the test opens.
"""

from __future__ import annotations

import contextlib
import ftplib
import io
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from helpers import call_csv
from helpers.push import eventually, push_login

from connectbatch.models import Connection, Method, Run, RunStatus
from connectbatch.services import Provisioned, Services
from connectbatch.transfer.push.ftp import HostedFtpServer
from connectbatch.transfer.push.gateway import Account, Gateway
from connectbatch.transfer.push.sftp import HostedSftpServer, host_key_path

HOST = "127.0.0.1"
TIMEOUT = 30.0


class HeldGateway(Gateway):
    """The real gateway, whose first ingest waits until the test opens `gate` (so the uploads
    finishing meanwhile wait for their turn, as behind a partner's big file)."""

    def __init__(self, services: Services) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.groups: list[list[str]] = []
        super().__init__(services, workers=2, ingest=self._held)

    def _held(self, connection_id: int, paths: list[Path]) -> list[Run]:
        self.groups.append([p.name for p in paths])
        if len(self.groups) == 1:
            self.started.set()
            assert self.gate.wait(TIMEOUT)
        return self.services.ingest_files(connection_id, list(paths), "push")


def waiting_files(services: Services, connection: Connection) -> list[str]:
    home = services.settings.home / "push" / str(connection.id)
    return sorted(p.name for p in home.iterdir()) if home.is_dir() else []


def loaded(services: Services, connection: Connection) -> list[tuple[str, RunStatus, int]]:
    """Each run of the connection as (file name, status, rows accepted), sorted."""
    return sorted(
        (f.name, r.status, r.rows_accepted)
        for r in services.runs(connection.name)
        for f in services.run_files(r.id)
    )


# -- SFTP ----------------------------------------------------------------------------------


@contextlib.contextmanager
def sftp_server(services: Services) -> Iterator[tuple[HeldGateway, HostedSftpServer]]:
    gateway = HeldGateway(services)
    server = HostedSftpServer(gateway, HOST, 0, host_key_path(services.settings.home))
    server.start()
    try:
        yield gateway, server
    finally:
        gateway.gate.set()
        server.stop()
        gateway.close()


@contextlib.contextmanager
def sftp(server: HostedSftpServer, login: Provisioned) -> Iterator[paramiko.SFTPClient]:
    transport = paramiko.Transport((HOST, server.port))
    try:
        transport.connect(username=login.username, password=login.password)
        client = paramiko.SFTPClient.from_transport(transport)
        assert client is not None
        with client:
            yield client
    finally:
        transport.close()


def test_sftp_a_name_sent_again_while_its_upload_waits_is_loaded_once_in_full(services: Services) -> None:
    connection, login = push_login(services, "Acme", Method.SFTP)
    first, second = call_csv(5, prefix="one"), call_csv(50, prefix="two")
    with sftp_server(services) as (gateway, server), sftp(server, login) as client:
        client.putfo(io.BytesIO(call_csv(3, prefix="big")), "big.csv")
        assert gateway.started.wait(TIMEOUT)  # big.csv's ingest holds the connection's turn
        client.putfo(io.BytesIO(first), "same.csv")  # waits behind it
        again = client.open("same.csv", "w")  # the partner sends the name again
        again.write(second[:1000])
        again.flush()

        gateway.gate.set()  # same.csv's turn comes while the new upload is half written
        gateway.wait(TIMEOUT)
        assert loaded(services, connection) == [("big.csv", RunStatus.COMPLETED, 3)]
        assert waiting_files(services, connection) == ["same.csv"]  # neither read nor removed

        again.write(second[1000:])
        again.close()
        gateway.wait(TIMEOUT)
    assert loaded(services, connection) == [
        ("big.csv", RunStatus.COMPLETED, 3),
        ("same.csv", RunStatus.COMPLETED, 50),  # the second upload, whole
    ]
    assert waiting_files(services, connection) == []


def revoke(services: Services, connection: Connection, what: str) -> None:
    """What the admin does while the partner is logged in (`connectbatch credentials delete`,
    `connectbatch connection delete`)."""
    if what == "credential":
        [credential] = services.credentials(connection.id)
        services.delete_credential(credential.id)
    else:
        services.delete_connection(connection.id)


@pytest.mark.parametrize("what", ["credential", "connection"])
def test_sftp_a_session_of_a_deleted_login_may_not_upload_any_more(services: Services, what: str) -> None:
    connection, login = push_login(services, "Acme", Method.SFTP)
    with sftp_server(services) as (gateway, server):
        gateway.gate.set()
        with sftp(server, login) as client:
            assert client.listdir("/") == []
            revoke(services, connection, what)
            with pytest.raises(
                PermissionError, match=f"{login.username!r} was revoked|connection .* was deleted"
            ):
                client.putfo(io.BytesIO(call_csv(4)), "calls.csv")
            transport = client.get_channel().get_transport()
            eventually(lambda: not transport.is_active(), "the session closed")
        gateway.wait(TIMEOUT)
    assert services.runs() == []
    assert waiting_files(services, connection) == []


def test_sftp_an_upload_finishing_after_its_login_was_deleted_is_refused_and_removed(
    services: Services,
) -> None:
    connection, login = push_login(services, "Acme", Method.SFTP)
    data = call_csv(20, prefix="late")
    with sftp_server(services) as (gateway, server):
        gateway.gate.set()
        with sftp(server, login) as client:
            remote = client.open("calls.csv", "w")
            remote.write(data[:500])
            remote.flush()
            revoke(services, connection, "credential")
            remote.write(data[500:])
            remote.close()  # refused (paramiko's client does not raise for a failed close)
            transport = client.get_channel().get_transport()
            eventually(lambda: not transport.is_active(), "the session closed")
        gateway.wait(TIMEOUT)
    assert services.runs() == []
    assert waiting_files(services, connection) == []


def test_sftp_a_file_one_session_writes_is_not_written_by_another_meanwhile(services: Services) -> None:
    """Found by a push audit with real clients: a second upload of a name (3 rows) while a
    first (a big one) was still going truncated the file, and the first went on writing at
    its own offsets: the file loaded as the 3 rows, megabytes of NUL bytes, then the rest of
    the first. The second session is refused, saying why, the first loads in full, and the
    name may be sent again once it has ended."""
    connection, login = push_login(services, "Acme", Method.SFTP)
    data, again = call_csv(40, prefix="first"), call_csv(3, prefix="again")
    with sftp_server(services) as (gateway, server):
        gateway.gate.set()  # nothing held here
        with sftp(server, login) as one, sftp(server, login) as other:
            first = one.open("calls.csv", "w")
            first.write(data[:500])
            first.flush()
            for mode in ("w", "a"):  # sent anew, or resumed
                with pytest.raises(OSError, match="still open for writing by another session"):
                    other.open("calls.csv", mode)
            first.write(data[500:])
            first.close()
            gateway.wait(TIMEOUT)
            assert loaded(services, connection) == [("calls.csv", RunStatus.COMPLETED, 40)]
            with other.open("calls.csv", "w") as late:  # the first has ended: taken
                late.write(again)
            gateway.wait(TIMEOUT)
    assert sorted(loaded(services, connection)) == [
        ("calls.csv", RunStatus.COMPLETED, 3), ("calls.csv", RunStatus.COMPLETED, 40),
    ]  # fmt: skip
    assert waiting_files(services, connection) == []


def test_sftp_a_file_another_session_renames_while_it_is_written_is_loaded_under_its_new_name(
    services: Services,
) -> None:
    """Found by trying the server as a partner: session B renamed `calls.csv.tmp` to
    `calls.csv` while session A still wrote it; the rename could not take it in (written),
    and A's close reported the old, in-flight name, so the upload was never loaded."""
    connection, login = push_login(services, "Acme", Method.SFTP)
    data = call_csv(40, prefix="moved")
    with sftp_server(services) as (gateway, server):
        gateway.gate.set()  # nothing held here
        with sftp(server, login) as writer, sftp(server, login) as other:
            upload = writer.open("calls.csv.tmp", "w")
            upload.write(data[:1000])
            upload.flush()
            other.posix_rename("calls.csv.tmp", "calls.csv")
            gateway.wait(TIMEOUT)
            assert loaded(services, connection) == []  # still being written

            upload.write(data[1000:])
            upload.close()
            gateway.wait(TIMEOUT)
    assert loaded(services, connection) == [("calls.csv", RunStatus.COMPLETED, 40)]
    assert waiting_files(services, connection) == []


# -- FTP(S) --------------------------------------------------------------------------------


@contextlib.contextmanager
def ftp_server(services: Services, **options: object) -> Iterator[tuple[HeldGateway, HostedFtpServer]]:
    gateway = HeldGateway(services)
    server = HostedFtpServer(gateway, HOST, 0, failed_login_delay=0.1, **options)  # type: ignore[arg-type]
    server.start()
    try:
        yield gateway, server
    finally:
        gateway.gate.set()
        server.stop()
        gateway.close()


@contextlib.contextmanager
def ftps(server: HostedFtpServer, login: Provisioned) -> Iterator[ftplib.FTP_TLS]:
    assert server.tls_cert is not None
    ftp = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=str(server.tls_cert)))
    ftp.connect(HOST, server.port, timeout=TIMEOUT)
    try:
        ftp.login(login.username, login.password)
        ftp.prot_p()
        yield ftp
    finally:
        ftp.close()


def test_ftp_a_name_sent_again_while_its_upload_waits_is_loaded_once_in_full(services: Services) -> None:
    connection, login = push_login(services, "Acme", Method.FTP)
    first, second = call_csv(5, prefix="one"), call_csv(50, prefix="two")
    with ftp_server(services) as (gateway, server), ftps(server, login) as ftp:
        assert ftp.storbinary("STOR big.csv", io.BytesIO(call_csv(3, prefix="big"))).startswith("226")
        assert gateway.started.wait(TIMEOUT)
        assert ftp.storbinary("STOR same.csv", io.BytesIO(first)).startswith("226")
        data = ftp.transfercmd("STOR same.csv")  # sent again, by hand: half of it for now
        data.sendall(second[:1000])

        gateway.gate.set()
        gateway.wait(TIMEOUT)
        assert loaded(services, connection) == [("big.csv", RunStatus.COMPLETED, 3)]
        assert waiting_files(services, connection) == ["same.csv"]

        data.sendall(second[1000:])
        assert isinstance(data, ssl.SSLSocket)
        data.unwrap().close()
        assert ftp.voidresp().startswith("226")
        gateway.wait(TIMEOUT)
    assert loaded(services, connection) == [
        ("big.csv", RunStatus.COMPLETED, 3),
        ("same.csv", RunStatus.COMPLETED, 50),
    ]
    assert waiting_files(services, connection) == []


def test_ftp_a_file_one_session_stores_is_not_stored_by_another_meanwhile(services: Services) -> None:
    """The FTP side of the push audit's finding (see the SFTP test): a second STOR (or APPE)
    of a name another session is still storing gets 550 saying why; the first loads whole."""
    connection, login = push_login(services, "Acme", Method.FTP)
    data = call_csv(40, prefix="first")
    with ftp_server(services) as (gateway, server), ftps(server, login) as one, ftps(server, login) as other:
        gateway.gate.set()  # nothing held here
        upload = one.transfercmd("STOR calls.csv")
        upload.sendall(data[:500])
        for command in ("STOR", "APPE"):
            with pytest.raises(ftplib.error_perm, match="still open for writing by another session"):
                other.storbinary(f"{command} calls.csv", io.BytesIO(b"CampaignId\r\n"))
        upload.sendall(data[500:])
        assert isinstance(upload, ssl.SSLSocket)
        upload.unwrap().close()
        assert one.voidresp().startswith("226")
        gateway.wait(TIMEOUT)
    assert loaded(services, connection) == [("calls.csv", RunStatus.COMPLETED, 40)]


def test_ftp_a_file_another_session_renames_while_it_is_stored_is_loaded_under_its_new_name(
    services: Services,
) -> None:
    """The FTP side of the SFTP test above: RNFR/RNTO from a second session during a STOR."""
    connection, login = push_login(services, "Acme", Method.FTP)
    data_rows = call_csv(40, prefix="moved")
    with ftp_server(services) as (gateway, server):
        gateway.gate.set()
        with ftps(server, login) as writer, ftps(server, login) as other:
            data = writer.transfercmd("STOR calls.csv.tmp")
            data.sendall(data_rows[:1000])
            eventually(lambda: "calls.csv.tmp" in waiting_files(services, connection), "the upload began")
            other.rename("calls.csv.tmp", "calls.csv")
            gateway.wait(TIMEOUT)
            assert loaded(services, connection) == []  # still being written

            data.sendall(data_rows[1000:])
            assert isinstance(data, ssl.SSLSocket)
            data.unwrap().close()
            assert writer.voidresp().startswith("226")
            gateway.wait(TIMEOUT)
            eventually(lambda: bool(loaded(services, connection)), "the upload was loaded")
    assert loaded(services, connection) == [("calls.csv", RunStatus.COMPLETED, 40)]
    assert waiting_files(services, connection) == []


@pytest.mark.parametrize("what", ["credential", "connection"])
def test_ftp_a_session_of_a_deleted_login_may_not_upload_any_more(services: Services, what: str) -> None:
    connection, login = push_login(services, "Acme", Method.FTP)
    with ftp_server(services) as (gateway, server), ftps(server, login) as ftp:
        gateway.gate.set()
        assert ftp.nlst() == []
        revoke(services, connection, what)
        with pytest.raises(ftplib.error_perm, match=r"^550 Permission denied: .*(was revoked|was deleted)"):
            ftp.storbinary("STOR calls.csv", io.BytesIO(call_csv(4)))
        with pytest.raises((EOFError, OSError)):  # the session ended
            ftp.voidcmd("NOOP")
        gateway.wait(TIMEOUT)
    assert services.runs() == []
    assert waiting_files(services, connection) == []


def test_ftp_an_upload_finishing_after_its_login_was_deleted_is_refused_and_removed(
    services: Services,
) -> None:
    connection, login = push_login(services, "Acme", Method.FTP)
    data = call_csv(20, prefix="late")
    with ftp_server(services) as (gateway, server), ftps(server, login) as ftp:
        gateway.gate.set()
        channel = ftp.transfercmd("STOR calls.csv")
        channel.sendall(data[:500])
        revoke(services, connection, "credential")
        channel.sendall(data[500:])
        assert isinstance(channel, ssl.SSLSocket)
        channel.unwrap().close()
        with pytest.raises(ftplib.error_perm, match=r"^550 Permission denied: .*was revoked"):
            ftp.voidresp()
        gateway.wait(TIMEOUT)
    assert services.runs() == []
    assert waiting_files(services, connection) == []


@pytest.fixture(autouse=True)
def _no_leftover_loading_folders(services: Services) -> Iterator[None]:
    """Whatever a test loads or puts back, the gateway's private folder is left empty."""
    yield
    loading = services.settings.home / "push" / ".loading"
    assert not loading.exists() or list(loading.iterdir()) == []


def two_partners(services: Services, gateway: Gateway) -> tuple[Connection, Account, Account]:
    """Push connections Acme and Bolt over SFTP: Acme, and the two logins' accounts."""
    acme, acme_login = push_login(services, "Acme", Method.SFTP)
    bolt, bolt_login = push_login(services, "Bolt", Method.SFTP)
    return acme, gateway.account(acme_login.username, acme), gateway.account(bolt_login.username, bolt)


def test_a_partners_follow_up_uploads_hold_back_no_other_partner(services: Services) -> None:
    """One partner's big upload and two small ones after it held both push workers: one
    ingesting the big file, one waiting for the connection's turn, so another partner's file
    waited for that whole ingest (seconds, minutes for a big file)."""
    gateway = HeldGateway(services)
    try:
        acme, acme_account, bolt_account = two_partners(services, gateway)
        for name in ("big.csv", "more-1.csv", "more-2.csv"):
            (acme_account.home / name).write_bytes(call_csv(3, prefix=name[:6]))
        (bolt_account.home / "calls.csv").write_bytes(call_csv(4, prefix="bolt"))

        big = gateway.upload_complete(acme_account, acme_account.home / "big.csv")
        assert big is not None and gateway.started.wait(TIMEOUT)  # Acme's big ingest holds its turn
        follow_ups = [
            gateway.upload_complete(acme_account, acme_account.home / f"more-{i}.csv") for i in (1, 2)
        ]
        other = gateway.upload_complete(bolt_account, bolt_account.home / "calls.csv")
        assert other is not None
        run = other.result(TIMEOUT)  # before: only once Acme's big ingest ended
        assert run is not None and run.status is RunStatus.COMPLETED and run.rows_accepted == 4
        assert not big.done()

        gateway.gate.set()
        assert big.result(TIMEOUT) is not None
        assert all(f is not None and f.result(TIMEOUT) is not None for f in follow_ups)
        assert sorted(n for n, *_ in loaded(services, acme)) == ["big.csv", "more-1.csv", "more-2.csv"]
    finally:
        gateway.gate.set()
        gateway.wait(TIMEOUT)
        gateway.close()


class HeldTrials(Gateway):
    """The real gateway whose dry runs wait until the test opens `gate` (big trial files)."""

    def __init__(self, services: Services) -> None:
        self.gate = threading.Event()
        super().__init__(services, workers=2)

    def _dry_run(self, *args: object) -> None:  # type: ignore[override]
        assert self.gate.wait(TIMEOUT)
        super()._dry_run(*args)  # type: ignore[arg-type]


def test_a_partners_dry_runs_hold_back_no_other_partners_loads(services: Services) -> None:
    """Dry runs shared the push workers first come, first served: a partner's trial uploads
    of big files held another partner's real loads behind them (31 s for eight)."""
    gateway = HeldTrials(services)
    try:
        _acme, acme_account, bolt_account = two_partners(services, gateway)
        trials = acme_account.home / "dry-run"
        trials.mkdir()
        for i in (1, 2, 3):
            (trials / f"try-{i}.csv").write_bytes(call_csv(3, prefix=f"try{i}"))
            assert gateway.upload_complete(acme_account, trials / f"try-{i}.csv") is not None
        (bolt_account.home / "calls.csv").write_bytes(call_csv(4, prefix="bolt"))
        other = gateway.upload_complete(bolt_account, bolt_account.home / "calls.csv")
        assert other is not None
        run = other.result(TIMEOUT)
        assert run is not None and run.status is RunStatus.COMPLETED and run.rows_accepted == 4
    finally:
        gateway.gate.set()
        gateway.wait(TIMEOUT)
        gateway.close()


def test_sftp_an_upload_under_lftps_temporary_dot_name_is_loaded_once_renamed(services: Services) -> None:
    """Found by a push audit with lftp (`xfer:use-temp-file`): it uploads to `.in.NAME` and
    then renames; the temporary name was loaded (the pattern `*` takes it) and the file it
    became was left in the partner's folder, looking unprocessed."""
    connection, login = push_login(services, "Acme", Method.SFTP)
    with sftp_server(services) as (gateway, server):
        gateway.gate.set()  # nothing held here
        with sftp(server, login) as client:
            with client.open(".in.calls.csv", "w") as upload:
                upload.write(call_csv(7, prefix="lftp"))
            gateway.wait(TIMEOUT)
            assert loaded(services, connection) == []
            client.posix_rename(".in.calls.csv", "calls.csv")
            gateway.wait(TIMEOUT)
    assert loaded(services, connection) == [("calls.csv", RunStatus.COMPLETED, 7)]
    assert waiting_files(services, connection) == []


def test_sftp_a_file_taken_in_before_its_client_looks_at_it_answers_as_uploaded(services: Services) -> None:
    """Found by a fresh-clone CI run: paramiko's `put` STATs the file after its close to
    compare the size, and a small upload was loaded and removed by then: the partner's upload
    raised "No such file" although it had been taken in."""
    connection, login = push_login(services, "Acme", Method.SFTP)
    data = call_csv(6, prefix="quick")
    with sftp_server(services) as (gateway, server):
        gateway.gate.set()  # nothing held here
        with sftp(server, login) as client:
            client.putfo(io.BytesIO(data), "calls.csv", confirm=False)
            gateway.wait(TIMEOUT)
            assert waiting_files(services, connection) == []  # taken in and removed
            assert client.stat("calls.csv").st_size == len(data)
            with pytest.raises(FileNotFoundError):
                client.stat("other.csv")  # never uploaded on this channel: still no such file
    assert loaded(services, connection) == [("calls.csv", RunStatus.COMPLETED, 6)]
