"""Push to us / Pull from us over our hosted FTP server, with real sockets on 127.0.0.1.

Partners use ordinary FTPS clients (ftplib's FTP_TLS here: the server requires TLS by default,
with a self-signed certificate it generated under the data home, which the clients trust) with
the login `Services.create_connection` provisioned; what they upload is ingested through the
`Gateway` exactly as a real engine would, and `Gateway.wait()` waits for those ingests. The
server replies 226/250 only after handing a finished upload to the gateway, so `wait()` right
after a transfer is enough.
"""

from __future__ import annotations

import ftplib
import io
import os
import shutil
import ssl
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import call_csv
from helpers.certs import write_self_signed_cert
from helpers.ports import free_port

from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import Provisioned, Services
from connectbatch.settings import Settings
from connectbatch.transfer.push.ftp import HostedFtpServer
from connectbatch.transfer.push.gateway import Account, Gateway

HOST = "127.0.0.1"
TIMEOUT = 20.0


# -- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture
def gateway(services: Services) -> Iterator[Gateway]:
    gw = Gateway(services)
    yield gw
    gw.close()


@pytest.fixture
def server(gateway: Gateway) -> Iterator[HostedFtpServer]:
    # Twenty parallel logins from one address are normal here (the per-address limit on
    # connections not yet logged in is tested in tests/security, the sessions per login in
    # tests/integration/test_push_limits.py).
    with HostedFtpServer(
        gateway, HOST, 0, failed_login_delay=0.2, max_connections_per_address=64, max_sessions_per_login=64
    ) as srv:
        yield srv


def push_connection(services: Services, name: str) -> tuple[Connection, Provisioned]:
    """An inbound "Push to us" connection over FTP, and the login made for it."""
    connection, login = services.create_connection(
        Connection(
            name=name,
            data_type="call_conversions",
            direction=Direction.INBOUND,
            method=Method.FTP,
            methodology=Methodology.PUSH,
        )
    )
    assert login is not None
    return connection, login


def trusting(server: HostedFtpServer) -> ssl.SSLContext:
    """A client TLS context that trusts (only) the server's self-signed certificate."""
    assert server.tls_cert is not None
    return ssl.create_default_context(cafile=str(server.tls_cert))


def client(server: HostedFtpServer, login: Provisioned) -> ftplib.FTP_TLS:
    ftp = ftplib.FTP_TLS(context=trusting(server))
    ftp.connect(HOST, server.port, timeout=TIMEOUT)
    ftp.login(login.username, login.password)  # AUTH TLS first
    ftp.prot_p()
    return ftp


def upload(ftp: ftplib.FTP, name: str, data: bytes) -> str:
    return ftp.storbinary(f"STOR {name}", io.BytesIO(data))


def download(ftp: ftplib.FTP, name: str) -> bytes:
    out = io.BytesIO()
    ftp.retrbinary(f"RETR {name}", out.write)
    return out.getvalue()


def home_of(services: Services, connection: Connection) -> Path:
    return services.settings.home / "push" / str(connection.id)


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# -- push: uploads become runs -------------------------------------------------------------


def test_an_upload_is_ingested_as_one_completed_run(
    services: Services, gateway: Gateway, server: HostedFtpServer
) -> None:
    connection, login = push_connection(services, "Acme")
    with client(server, login) as ftp:
        assert upload(ftp, "calls_today.csv", call_csv(40)).startswith("226")
        gateway.wait(TIMEOUT)

    runs = services.runs("Acme")
    assert len(runs) == 1
    run = runs[0]
    assert run.status is RunStatus.COMPLETED, run.reason
    assert run.trigger == "push"
    assert (run.files_loaded, run.rows_accepted, run.actions_created) == (1, 40, 40)
    assert services.count_actions("Acme") == 40
    assert files_in(home_of(services, connection)) == []  # staged by sha256, then removed


class SlowStoreGateway(Gateway):
    """The real gateway whose `hold`-th store read for a session (`revoked`: 1 at the STOR,
    2 at the upload's completion) waits until the test opens `gate`, as behind a big
    ingest's checkpoint."""

    def __init__(self, services: Services, hold: int) -> None:
        super().__init__(services)
        self.hold, self.calls = hold, 0
        self.gate, self.waiting = threading.Event(), threading.Event()

    def revoked(self, account: Account) -> str | None:
        self.calls += 1
        if self.calls == self.hold:
            self.waiting.set()
            assert self.gate.wait(TIMEOUT)
        return super().revoked(account)


@pytest.mark.parametrize("hold", [1, 2], ids=["at-STOR", "at-completion"])
def test_a_session_waiting_on_the_store_stalls_no_other_session(services: Services, hold: int) -> None:
    """Store work runs off the server's one IO loop: before, a session's STOR and an upload's
    completion read the store on the loop, so every other partner's session stood still for
    as long as that read waited (seconds behind a big ingest's checkpoint)."""
    _connection, login = push_connection(services, "Acme")
    gateway = SlowStoreGateway(services, hold)
    try:
        with (
            HostedFtpServer(gateway, HOST, 0, max_sessions_per_login=4) as server,
            ThreadPoolExecutor(1) as pool,
        ):
            waiting, other = client(server, login), client(server, login)
            stored = pool.submit(upload, waiting, "calls.csv", call_csv(10))
            assert gateway.waiting.wait(TIMEOUT)
            other.sock.settimeout(5)  # the loop stood still until the gate opened: a timeout
            assert other.voidcmd("NOOP").startswith("200")
            assert isinstance(other.nlst(), list)  # a data transfer too
            assert not stored.done()
            gateway.gate.set()
            assert stored.result(TIMEOUT).startswith("226")
            gateway.wait(TIMEOUT)
            other.quit()
            waiting.quit()
        assert [(r.status, r.rows_accepted) for r in services.runs("Acme")] == [(RunStatus.COMPLETED, 10)]
    finally:
        gateway.gate.set()
        gateway.close()


def test_a_part_upload_waits_for_its_rename(
    services: Services, gateway: Gateway, server: HostedFtpServer
) -> None:
    connection, login = push_connection(services, "Acme")
    with client(server, login) as ftp:
        upload(ftp, "calls.csv.part", call_csv(25))
        gateway.wait(TIMEOUT)
        assert services.runs("Acme") == []  # still in flight
        assert files_in(home_of(services, connection)) == ["calls.csv.part"]

        ftp.rename("calls.csv.part", "calls.csv")
        gateway.wait(TIMEOUT)

    runs = services.runs("Acme")
    assert [r.status for r in runs] == [RunStatus.COMPLETED]
    assert runs[0].rows_accepted == 25
    assert services.count_actions("Acme") == 25


def test_an_upload_renamed_from_a_name_the_pattern_does_not_take_is_ingested_once(
    services: Services, gateway: Gateway, server: HostedFtpServer
) -> None:
    """A client uploading under a temporary name of its own (not one of the in-flight
    suffixes) and renaming it when done: the rename completes it, as over SFTP."""
    connection, login = push_connection(services, "Acme")
    services.update_connection(connection.id, pattern="*.csv")
    with client(server, login) as ftp:
        upload(ftp, "calls.csv.uploading", call_csv(7, prefix="ren"))
        gateway.wait(TIMEOUT)
        assert services.runs("Acme") == []  # the pattern does not take that name
        assert ftp.rename("calls.csv.uploading", "calls.csv").startswith("250")
        gateway.wait(TIMEOUT)
        assert ftp.nlst() == []
    runs = services.runs("Acme")
    assert [(r.status, r.rows_accepted) for r in runs] == [(RunStatus.COMPLETED, 7)]
    assert [f.name for f in services.run_files(runs[0].id)] == ["calls.csv"]


def test_twenty_concurrent_uploads_each_land_exactly_once(
    services: Services, gateway: Gateway, server: HostedFtpServer
) -> None:
    _, login = push_connection(services, "Acme")
    files = {f"calls_{i:02d}.csv": call_csv(10, prefix=f"u{i:02d}") for i in range(20)}

    def send(item: tuple[str, bytes]) -> str:
        with client(server, login) as ftp:  # one client, one session per upload
            return upload(ftp, *item)

    with ThreadPoolExecutor(max_workers=20) as pool:
        replies = list(pool.map(send, files.items()))
    assert all(reply.startswith("226") for reply in replies), replies
    gateway.wait(60)

    runs = services.runs("Acme")
    assert len(runs) == 20
    assert all(r.status is RunStatus.COMPLETED for r in runs), [r.reason for r in runs]
    assert all((r.files_loaded, r.files_skipped, r.rows_duplicate) == (1, 0, 0) for r in runs)
    names = sorted(f.name for r in runs for f in services.run_files(r.id))
    assert names == sorted(files)
    assert services.count_actions("Acme") == 200


# -- confinement ---------------------------------------------------------------------------


def test_folders_and_files_a_partner_makes_are_for_the_service_user_only(
    services: Services, gateway: Gateway, server: HostedFtpServer
) -> None:
    """As on SFTP: 0700 folders, 0600 files, the push root and home 0700 too (pyftpdlib's own
    mkdir left 0755; then our group could read every partner's uploads: security audit)."""
    connection, login = push_connection(services, "Acme")
    with client(server, login) as ftp:
        ftp.mkd("daily")
        upload(ftp, "daily/calls.csv.part", call_csv(2))
    home = home_of(services, connection)
    assert (home / "daily").stat().st_mode & 0o777 == 0o700
    assert (home / "daily" / "calls.csv.part").stat().st_mode & 0o777 == 0o600
    assert home.stat().st_mode & 0o777 == home.parent.stat().st_mode & 0o777 == 0o700


def test_a_login_sees_and_reads_only_its_own_folder(
    services: Services, gateway: Gateway, server: HostedFtpServer
) -> None:
    first, first_login = push_connection(services, "Acme")
    second, second_login = push_connection(services, "Globex")
    secret = call_csv(5, prefix="secret")
    with client(server, first_login) as ftp:
        upload(ftp, "secret.csv.part", secret)  # kept: not ingested until renamed
    first_home = home_of(services, first)
    assert (first_home / "secret.csv.part").read_bytes() == secret

    with client(server, second_login) as ftp:
        second_home = home_of(services, second)
        # Links a local user could plant in the partner's folder, pointing out of it.
        (second_home / "escape").symlink_to(first_home, target_is_directory=True)
        (second_home / "leak.csv").symlink_to(first_home / "secret.csv.part")
        (second_home / "passwd").symlink_to("/etc/passwd")

        assert ftp.pwd() == "/"
        ftp.cwd("..")  # the home is the root: going up stays there
        assert ftp.pwd() == "/"
        assert ftp.nlst() == []  # planted links are not even listed
        listing: list[str] = []
        ftp.retrlines("LIST", listing.append)
        assert listing == []

        refused = [
            f"../{first.id}/secret.csv.part",
            f"/../../push/{first.id}/secret.csv.part",
            str(first_home / "secret.csv.part"),  # the real absolute path
            "leak.csv",
            "escape/secret.csv.part",
            "passwd",
        ]
        for path in refused:
            with pytest.raises(ftplib.error_perm, match=r"^550"):
                download(ftp, path)
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            ftp.cwd("escape")
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            ftp.cwd(str(first_home))
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            upload(ftp, "leak.csv", b"overwrite")  # writing through a link is refused
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            ftp.delete(f"../{first.id}/secret.csv.part")
        with pytest.raises(ftplib.error_perm, match=r"^500"):
            ftp.sendcmd("SITE CHMOD 777 leak.csv")  # not offered at all

    assert (first_home / "secret.csv.part").read_bytes() == secret
    gateway.wait(TIMEOUT)
    assert services.runs("Acme") == [] and services.runs("Globex") == []


def test_a_wrong_password_gets_530_without_echoing_it(services: Services, server: HostedFtpServer) -> None:
    _, login = push_connection(services, "Acme")
    wrong = "Not-The-Password-77"
    for username in (login.username, "cb_nobody_000000"):
        ftp = ftplib.FTP_TLS(context=trusting(server))
        ftp.connect(HOST, server.port, timeout=TIMEOUT)
        started = time.monotonic()
        with pytest.raises(ftplib.error_perm) as caught:
            ftp.login(username, wrong)
        assert time.monotonic() - started >= 0.15  # failed logins are slowed down
        assert str(caught.value) == "530 Login incorrect."
        ftp.close()
    with client(server, login) as ftp:  # the right one still works
        assert ftp.pwd() == "/"


def test_an_upload_over_the_size_limit_is_refused_and_removed(settings: Settings) -> None:
    services = Services(replace(settings, max_file_bytes=1024))
    gateway = Gateway(services)
    connection, login = push_connection(services, "Acme")
    small, big = call_csv(2, prefix="s"), call_csv(200, prefix="b")
    assert len(small) < 1024 < len(big)
    try:
        with HostedFtpServer(gateway, HOST, 0) as server, client(server, login) as ftp:
            with pytest.raises(ftplib.error_perm, match=r"^552"):
                try:
                    upload(ftp, "big.csv", big)
                except OSError:  # cut off while still sending: the 552 is on its way
                    ftp.voidresp()
            assert ftp.nlst() == []  # the session goes on; the partial file is gone
    finally:
        gateway.wait(TIMEOUT)
    assert files_in(home_of(services, connection)) == []  # no partial file left
    assert services.runs("Acme") == []

    try:
        with HostedFtpServer(gateway, HOST, 0) as server, client(server, login) as ftp:
            assert upload(ftp, "small.csv", small).startswith("226")  # under the limit: fine
            gateway.wait(TIMEOUT)
    finally:
        gateway.close()
    assert [r.status for r in services.runs("Acme")] == [RunStatus.COMPLETED]


# -- pull from us --------------------------------------------------------------------------


def test_an_outbound_login_downloads_its_results_but_cannot_upload(
    services: Services, gateway: Gateway, server: HostedFtpServer
) -> None:
    connection, login = services.create_connection(
        Connection(
            name="Acme results",
            data_type="call_conversions",
            direction=Direction.OUTBOUND,
            method=Method.FTP,
            methodology=Methodology.PULL_FROM_US,
        )
    )
    assert login is not None
    results = services.settings.outbound / str(connection.id)
    results.mkdir(parents=True, exist_ok=True)
    content = b"CallSessionId,Status,Reason\r\ncs-0001,accepted,\r\n"
    (results / "results_calls.csv").write_bytes(content)

    with client(server, login) as ftp:
        assert ftp.nlst() == ["results_calls.csv"]
        assert download(ftp, "results_calls.csv") == content
        for refused in (
            lambda: upload(ftp, "mine.csv", call_csv(3)),
            lambda: ftp.delete("results_calls.csv"),
            lambda: ftp.rename("results_calls.csv", "other.csv"),
            lambda: ftp.mkd("inbox"),
        ):
            with pytest.raises(ftplib.error_perm, match=r"^550"):
                refused()
    assert sorted(os.listdir(results)) == ["results_calls.csv"]
    gateway.wait(TIMEOUT)


def pickup(services: Services) -> tuple[Provisioned, Path]:
    """An outbound "Pull from us" connection over FTP: its login and its folder."""
    draft = Connection(
        "Acme pickup", "call_conversions", Direction.OUTBOUND, Method.FTP, Methodology.PULL_FROM_US
    )
    connection, login = services.create_connection(draft)
    assert login is not None
    folder = services.settings.outbound / str(connection.id)
    folder.mkdir(parents=True, exist_ok=True)
    return login, folder


def test_an_outbound_login_never_sees_a_file_still_in_flight(
    services: Services, gateway: Gateway, server: HostedFtpServer
) -> None:
    """Files staged in a pickup folder under a hidden or in-flight name (an export before
    its ledger row commits, a status file, results being written) are not listed, sized,
    dated or downloadable until they are published under their own name."""
    login, folder = pickup(services)
    staged = [".export-call_conversions-000001-20260101T000000.csv.tmp", ".tmp-status-1.csv", "x.csv.part"]
    for name in staged:
        (folder / name).write_bytes(b"CallSessionId\r\nhalf")
    (folder / "export-done.csv").write_bytes(b"CallSessionId\r\ncs-1\r\n")

    with client(server, login) as ftp:
        assert ftp.nlst() == ["export-done.csv"]
        listed: list[str] = []
        ftp.retrlines("LIST -a", listed.append)
        assert len(listed) == 1 and listed[0].endswith("export-done.csv")
        assert [name for name, _ in ftp.mlsd()] == ["export-done.csv"]
        for name in staged:
            with pytest.raises(ftplib.error_perm, match=r"^550"):
                download(ftp, name)
            for command in ("SIZE", "MDTM", "MLST"):
                with pytest.raises(ftplib.error_perm, match=r"^550"):
                    ftp.sendcmd(f"{command} {name}")
        assert download(ftp, "export-done.csv") == b"CallSessionId\r\ncs-1\r\n"
    gateway.wait(TIMEOUT)


def test_passive_data_connections_use_the_configured_ports(services: Services, gateway: Gateway) -> None:
    _, login = push_connection(services, "Acme")
    free = free_port()  # a port nothing listens on
    pasv = range(free, free + 1)
    with HostedFtpServer(gateway, HOST, 0, passive_ports=pasv) as server, client(server, login) as ftp:
        assert ftp.makepasv() == (HOST, free)  # loopback: no masquerade address
        assert ftp.nlst() == []


# -- FTPS ----------------------------------------------------------------------------------


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert_file, key_file = folder / "ftps.crt", folder / "ftps.key"
    write_self_signed_cert(cert_file, key_file)
    return cert_file, key_file


def test_ftps_with_a_self_signed_certificate(services: Services, gateway: Gateway, tmp_path: Path) -> None:
    pytest.importorskip("OpenSSL", reason="pyftpdlib's FTPS needs pyOpenSSL")
    cert, key = _self_signed(tmp_path)
    _, login = push_connection(services, "Acme")
    trusted = ssl.create_default_context(cafile=str(cert))  # verifies the name, too

    with HostedFtpServer(gateway, HOST, 0, tls_cert=cert, tls_key=key, failed_login_delay=0.2) as server:
        plain = ftplib.FTP()
        plain.connect(HOST, server.port, timeout=TIMEOUT)
        with pytest.raises(ftplib.error_perm, match=r"^530 TLS required: use AUTH TLS"):
            plain.login(login.username, login.password)  # never in clear text
        plain.close()

        with ftplib.FTP_TLS(context=trusted) as ftp:
            ftp.connect(HOST, server.port, timeout=TIMEOUT)
            ftp.login(login.username, login.password)  # AUTH TLS first
            with pytest.raises(ftplib.error_perm, match=r"^550 SSL/TLS required"):
                ftp.nlst()  # clear-text data refused
            ftp.prot_p()
            assert upload(ftp, "calls.csv", call_csv(15, prefix="tls")).startswith("226")
            gateway.wait(TIMEOUT)
            for _ in range(5):  # empty listings: no data, yet a complete TLS handshake and shutdown
                assert ftp.nlst() == []  # ingested, then removed from the folder

    runs = services.runs("Acme")
    assert [r.status for r in runs] == [RunStatus.COMPLETED]
    assert runs[0].rows_accepted == 15


def test_an_upload_ended_by_quit_while_the_server_stops_is_still_handed_over(
    services: Services, gateway: Gateway
) -> None:
    """A client that sends QUIT during its STOR owes no reply, so its upload is handed over
    in the server's pool; when that pool was already shut down (the server stopping), the
    upload was dropped with an error instead of being handed over."""
    _connection, login = push_connection(services, "Acme")
    with HostedFtpServer(gateway, HOST, 0) as server:
        ftp = client(server, login)
        data = call_csv(5)
        channel = ftp.transfercmd("STOR calls.csv")
        channel.sendall(data)
        assert server._context is not None
        server._context.login_pool.shutdown(wait=False)  # as when the server stops
        ftp.putcmd("QUIT")  # QUIT before the data connection ends
        channel.unwrap().close()
        ftp.close()
        deadline = time.monotonic() + TIMEOUT
        while not services.runs("Acme") and time.monotonic() < deadline:
            time.sleep(0.05)
        gateway.wait(TIMEOUT)
    assert [(r.status, r.rows_accepted) for r in services.runs("Acme")] == [(RunStatus.COMPLETED, 5)]


def test_lftp_mirrors_an_export_with_its_mode_readable(
    services: Services, gateway: Gateway, server: HostedFtpServer, tmp_path: Path
) -> None:
    """Outbound audit: MLSD said `unix.mode=0o600` (Python's octal), which lftp's mirror read
    as mode 0: every export it downloaded had no permission at all, unreadable by the partner
    (a non-root user). It says `0600`, and the copy keeps the file's mode."""
    if shutil.which("lftp") is None:
        pytest.skip("needs lftp (make test installs it)")
    login, folder = pickup(services)
    (folder / "export-done.csv").write_bytes(b"CallSessionId\r\ncs-1\r\n")
    (folder / "export-done.csv").chmod(0o600)
    with client(server, login) as ftp:
        facts = dict(ftp.mlsd(facts=["unix.mode"]))
        assert facts["export-done.csv"]["unix.mode"] == "0600"
    script = "; ".join(
        [
            "set ftp:ssl-force true", "set ftp:ssl-protect-data true", f"set ssl:ca-file {server.tls_cert}",
            "set ssl:check-hostname no", "set net:max-retries 1",
            f"open -u {login.username},{login.password} -p {server.port} {HOST}",
            f"mirror . {tmp_path / 'copy'}", "bye",
        ]
    )  # fmt: skip
    done = subprocess.run(["lftp", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    copy = tmp_path / "copy" / "export-done.csv"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert copy.read_bytes() == b"CallSessionId\r\ncs-1\r\n"
