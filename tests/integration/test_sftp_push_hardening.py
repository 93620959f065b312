"""What an attacker audit of our hosted SFTP server found, each fixed and checked against the
real server with real clients (paramiko, and OpenSSH's `sftp` where a partner would use it):

* one login held 8 sessions x 4 channels x 64 open files = 2,048 descriptors, past the process's
  soft limit: now at most 64 open files per login in all, and the 65th open says so;
* a 1-byte write at byte 200,000,000 made a 200 MB sparse file that staging copied as real
  bytes, outside the quota: a write past the end of the file is refused and the upload removed,
  while sequential, pipelined, overwriting and resumed uploads (`put`, `reput`) still work;
* CBC ciphers and MD5 and -96 MACs were negotiated: now refused, the usual ones still work;
* a throttled address was told only "Authentication failed": now a banner says why and for
  how long;
* truncate was answered OK and not done: now a size shrinks the file, and growing is refused.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest
from helpers import call_csv
from helpers.push import eventually, openssh_options

from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import Provisioned, Services
from connectbatch.settings import Settings
from connectbatch.transfer.push.gateway import Gateway
from connectbatch.transfer.push.sftp import HostedSftpServer, host_key_path
from connectbatch.transfer.push.sftp.guard import FailedLogins

HOST = "127.0.0.1"
INGEST_TIMEOUT = 60.0
CLIENT_TIMEOUT = 60.0
LIMIT = 64  # files one login may hold open at once (filesystem.MAX_OPEN_FILES_PER_LOGIN)

needs_openssh = pytest.mark.skipif(not shutil.which("sftp"), reason="needs openssh-client (make test-deps)")


@dataclass
class Hosted:
    services: Services
    gateway: Gateway
    server: HostedSftpServer
    tmp: Path

    def push(self, name: str, direction: Direction = Direction.INBOUND) -> tuple[Connection, Provisioned]:
        methodology = Methodology.PUSH if direction is Direction.INBOUND else Methodology.PULL_FROM_US
        connection, login = self.services.create_connection(
            Connection(
                name=name,
                data_type="call_conversions",
                direction=direction,
                method=Method.SFTP,
                methodology=methodology,
            )
        )
        assert login is not None
        return connection, login

    def home(self, connection: Connection) -> Path:
        return self.services.settings.home / "push" / str(connection.id)

    def ssh(self, login: Provisioned, password: str | None = None) -> paramiko.Transport:
        transport = paramiko.Transport((HOST, self.server.port))
        try:
            transport.connect(username=login.username, password=password or login.password)
        except BaseException:
            transport.close()
            raise
        return transport

    @contextlib.contextmanager
    def sftp(self, login: Provisioned) -> Iterator[paramiko.SFTPClient]:
        transport = self.ssh(login)
        try:
            yield sftp_of(transport)
        finally:
            transport.close()


def sftp_of(transport: paramiko.Transport) -> paramiko.SFTPClient:
    client = paramiko.SFTPClient.from_transport(transport)
    assert client is not None
    return client


def _start(tmp: Path, **server: object) -> Hosted:
    services = Services(Settings(home=tmp / "home", lock_timeout=10.0, sftp_port=0))
    gateway = Gateway(services, workers=1)
    hosted = HostedSftpServer(
        gateway,
        HOST,
        0,
        host_key_path(services.settings.home),
        max_connections_per_address=32,
        **server,  # type: ignore[arg-type]
    )
    return Hosted(services, gateway, hosted.start(), tmp)


@contextlib.contextmanager
def running(tmp: Path, **server: object) -> Iterator[Hosted]:
    engine = _start(tmp, **server)
    try:
        yield engine
    finally:
        engine.server.stop()
        engine.gateway.close()


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosted]:
    """One server for the module: each test uses logins of its own."""
    with running(tmp_path_factory.mktemp("hardening")) as engine:
        yield engine


def _descriptors() -> int:
    """Descriptors this process holds (the server runs in it)."""
    return len(os.listdir("/proc/self/fd"))


# --- 1. open files per login ----------------------------------------------------------------


def test_one_login_holds_at_most_64_open_files_across_all_its_sessions_and_channels(hosted: Hosted) -> None:
    _connection, login = hosted.push("Files Acme")
    _other_connection, other = hosted.push("Files Other")
    with hosted.sftp(login) as first:
        first.putfo(io.BytesIO(b"held\n"), "held.part")
    transports = [hosted.ssh(login) for _ in range(3)]
    try:
        channels = [sftp_of(t) for t in transports for _ in range(2)]  # 3 sessions x 2 channels
        before = _descriptors()
        held: list[paramiko.SFTPFile] = []
        refusals: list[str] = []
        for channel in channels:
            for _ in range(20):
                try:
                    held.append(channel.open("held.part", "r"))
                except OSError as exc:
                    refusals.append(str(exc))
        assert len(held) == LIMIT  # was: all 120, one descriptor each
        assert len(refusals) == 120 - LIMIT
        assert all(f"at most {LIMIT} at a time" in why for why in refusals), refusals[0]
        assert _descriptors() - before <= LIMIT + 8
        assert hosted.server.open_files.held(login.username) == LIMIT

        with hosted.sftp(other) as theirs:  # another partner is not starved
            theirs.putfo(io.BytesIO(b"mine\n"), "mine.part")
            with theirs.open("mine.part", "r") as mine:
                assert mine.read() == b"mine\n"

        held.pop().close()  # a file closed gives its place back
        held.append(channels[0].open("held.part", "r"))
        with pytest.raises(OSError, match="too many open files"):
            channels[-1].open("held.part", "r")

        on_first = sum(1 for f in held if f.sftp in channels[:2])
        assert on_first > 40
        transports[0].close()  # a session that ends gives back the files it held
        left = LIMIT - on_first
        eventually(lambda: hosted.server.open_files.held(login.username) == left, "files given back")
        channels[-1].open("held.part", "r").close()
    finally:
        for transport in transports:
            transport.close()
    eventually(lambda: hosted.server.open_files.held(login.username) == 0, "every file given back")


# --- 2. no writes past the end of a file ------------------------------------------------------


def test_a_write_far_past_the_end_is_refused_and_leaves_no_sparse_file(hosted: Hosted) -> None:
    connection, login = hosted.push("Sparse Acme")
    with hosted.sftp(login) as sftp:
        upload = sftp.open("Conversions_sparse.csv", "wb")
        upload.seek(200_000_000)
        with pytest.raises(OSError, match="writes must continue where the file ends"):
            upload.write(b"x")
        upload.close()  # (paramiko's client never reports a failed close)

        started = sftp.open("Conversions_gap.csv", "wb")
        started.write(call_csv(3, prefix="gap"))
        started.flush()
        started.seek(1_000_000)
        with pytest.raises(OSError, match=r"at byte \d+\): a write at byte 1000000 would leave a gap"):
            started.write(b"x")
        with contextlib.suppress(OSError):
            started.close()
        assert sftp.listdir("/") == []  # both partial files removed
    hosted.gateway.wait(INGEST_TIMEOUT)
    assert hosted.services.runs(connection.name) == []  # nothing went to staging
    assert not any(hosted.home(connection).iterdir())


def test_pipelined_overwriting_and_appending_writes_still_work(hosted: Hosted) -> None:
    """paramiko's `put` keeps many writes in flight; the server answers them in order."""
    connection, login = hosted.push("Writes Acme")
    data = os.urandom(3 * 1024 * 1024 + 17)
    local = hosted.tmp / "pipelined.bin"
    local.write_bytes(data)
    home = hosted.home(connection)
    with hosted.sftp(login) as sftp:
        sftp.put(str(local), "pipelined.part")  # pipelined, confirmed by size
        assert (home / "pipelined.part").read_bytes() == data

        with sftp.open("pipelined.part", "r+") as inside:  # an overwrite inside the file
            inside.seek(10)
            inside.write(b"ZZ")
        with sftp.open("pipelined.part", "a") as more:  # append
            more.write(b"tail")
        with sftp.open("pipelined.part", "r+") as resumed:  # a resume at the end
            resumed.seek(len(data) + 4)
            resumed.write(b"!")
    expected = data[:10] + b"ZZ" + data[12:] + b"tail!"
    assert (home / "pipelined.part").read_bytes() == expected


# --- OpenSSH's sftp ---------------------------------------------------------------------------


def _sftp_batch(
    hosted: Hosted, login: Provisioned, commands: str, *options: str
) -> subprocess.CompletedProcess[str]:
    """OpenSSH's `sftp -b`, logging in with the password through SSH_ASKPASS."""
    batch = hosted.tmp / "batch.txt"
    batch.write_text(commands)
    askpass = hosted.tmp / "askpass"
    askpass.write_text(f"#!/bin/sh\nprintf '%s\\n' '{login.password}'\n")
    askpass.chmod(0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSH_")}
    env.update(SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
    argv = [
        "sftp",
        *openssh_options(),
        *options,
        "-P",
        str(hosted.server.port),
        "-b",
        str(batch),
        f"{login.username}@{HOST}",
    ]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=CLIENT_TIMEOUT, env=env, stdin=subprocess.DEVNULL
    )


@needs_openssh
def test_openssh_put_and_reput_still_upload_whole_files(hosted: Hosted) -> None:
    connection, login = hosted.push("Reput Acme")
    home = hosted.home(connection)
    whole = os.urandom(2 * 1024 * 1024 + 5)
    big = hosted.tmp / "whole.bin"
    big.write_bytes(whole)
    result = _sftp_batch(hosted, login, f"put {big} whole.part\n")
    assert result.returncode == 0, result.stderr
    assert (home / "whole.part").read_bytes() == whole

    rows = call_csv(2000, prefix="reput")
    local = hosted.tmp / "Conversions_reput.csv"
    local.write_bytes(rows)
    with hosted.sftp(login) as sftp:  # an upload broken off halfway
        sftp.putfo(io.BytesIO(rows[: len(rows) // 2]), "Conversions_reput.csv.part")
    result = _sftp_batch(
        hosted,
        login,
        f"reput {local} Conversions_reput.csv.part\n"
        "rename Conversions_reput.csv.part Conversions_reput.csv\n",
    )
    assert result.returncode == 0, result.stderr
    hosted.gateway.wait(INGEST_TIMEOUT)
    runs = hosted.services.runs(connection.name)
    assert [run.status for run in runs] == [RunStatus.COMPLETED], [run.reason for run in runs]
    assert runs[0].rows_accepted == 2000


@needs_openssh
@pytest.mark.parametrize(
    "option",
    [
        "-oCiphers=3des-cbc",
        "-oCiphers=aes128-cbc",
        "-oCiphers=aes256-cbc",
        "-oMACs=hmac-md5",
        "-oMACs=hmac-md5-96",
        "-oMACs=hmac-sha1-96",
    ],
)
def test_weak_ciphers_and_macs_are_not_negotiated(hosted: Hosted, option: str) -> None:
    _connection, login = hosted.push(f"Weak {option[3:].replace('=', ' ')}")
    # A MAC is only negotiated with a cipher that has none of its own (not aes-gcm); the
    # first -o of a kind wins. Whichever side sees no match first ends the key exchange.
    result = _sftp_batch(hosted, login, "ls\n", option, "-oCiphers=aes128-ctr")
    assert result.returncode != 0  # was: connected and listed
    assert "no matching" in result.stderr or "Connection closed" in result.stderr, result.stderr


@needs_openssh
@pytest.mark.parametrize(
    "options",
    [
        (),
        ("-oCiphers=aes128-ctr", "-oMACs=hmac-sha2-256-etm@openssh.com"),
        ("-oCiphers=aes256-ctr", "-oMACs=hmac-sha2-512"),
        ("-oCiphers=aes256-gcm@openssh.com",),
        ("-oCiphers=aes128-gcm@openssh.com",),
        ("-oCiphers=aes192-ctr", "-oMACs=hmac-sha1"),
    ],
)
def test_the_ciphers_and_macs_of_current_clients_still_connect(
    hosted: Hosted, options: tuple[str, ...]
) -> None:
    _connection, login = hosted.push(f"Strong {len(options)} {' '.join(options)}"[:60])
    result = _sftp_batch(hosted, login, "ls\n", *options)
    assert result.returncode == 0, result.stderr


def test_paramiko_offering_only_cbc_cannot_connect(hosted: Hosted) -> None:
    _connection, login = hosted.push("Weak paramiko")
    good = [c for c in paramiko.Transport._preferred_ciphers if not c.endswith("-cbc")]
    transport = paramiko.Transport((HOST, hosted.server.port), disabled_algorithms={"ciphers": good})
    try:
        with pytest.raises(paramiko.SSHException, match="cipher"):
            transport.connect(username=login.username, password=login.password)
    finally:
        transport.close()
    with hosted.sftp(login) as sftp:  # the defaults still do
        assert sftp.listdir("/") == []


# --- 4. a throttled address is told why -------------------------------------------------------


def test_a_throttled_address_is_told_why_and_for_how_long(tmp_path: Path) -> None:
    with running(tmp_path, failed_logins=FailedLogins(limit=4, window=600.0)) as engine:
        _connection, login = engine.push("Throttled Acme")
        for attempt in range(4):
            with pytest.raises(paramiko.AuthenticationException):
                engine.ssh(login, f"wrong-{attempt}")
        for _ in range(2):  # the right password, refused unchecked, and said why
            transport = paramiko.Transport((HOST, engine.server.port))
            try:
                with pytest.raises(paramiko.AuthenticationException):
                    transport.connect(username=login.username, password=login.password)
                banner = (transport.get_banner() or b"").decode()
            finally:
                transport.close()
            assert "Too many failed logins from your address" in banner  # was: no banner at all
            assert "refused for 10 more minutes" in banner
        # Refused logins check nothing, so they do not stretch the time told.
        assert 590 < engine.server.failed_logins.blocked_for(HOST) <= 600


# --- 5. truncate is done, or refused --------------------------------------------------------


def test_truncate_shrinks_the_file_and_growing_it_is_refused(hosted: Hosted) -> None:
    connection, login = hosted.push("Truncate Acme")
    target = hosted.home(connection) / "t.part"
    with hosted.sftp(login) as sftp:
        sftp.putfo(io.BytesIO(b"AAAAAAAAAA"), "t.part")
        with sftp.open("t.part", "r+") as handle:
            handle.truncate(0)
            handle.write(b"BB")
        assert target.read_bytes() == b"BB"  # was: BBAAAAAAAA

        sftp.truncate("t.part", 1)
        assert target.read_bytes() == b"B"
        sftp.truncate("t.part", 1)  # keeping the size is fine too

        with pytest.raises(OSError, match="cannot be made larger"):
            sftp.truncate("t.part", 200_000_000)
        with sftp.open("t.part", "r+") as handle:
            with pytest.raises(OSError, match="cannot be made larger"):
                handle.truncate(100)
            handle.seek(1)
            handle.write(b"C")  # the handle still works: only the size was refused
        assert target.read_bytes() == b"BC"

        with sftp.open("t.part", "r") as reading, pytest.raises(PermissionError):
            reading.truncate(0)
        assert target.read_bytes() == b"BC"


def test_a_file_truncated_by_path_is_loaded_as_it_is_now(hosted: Hosted) -> None:
    connection, login = hosted.push("Truncate Path Acme")
    four = call_csv(4, prefix="cut")
    with hosted.sftp(login) as sftp:
        sftp.putfo(io.BytesIO(call_csv(6, prefix="cut")), "Conversions_cut.csv.part")
        sftp.truncate("Conversions_cut.csv.part", len(four))  # the first four rows stay
        sftp.rename("Conversions_cut.csv.part", "Conversions_cut.csv")
    hosted.gateway.wait(INGEST_TIMEOUT)
    runs = hosted.services.runs(connection.name)
    assert [(run.status, run.rows_accepted) for run in runs] == [(RunStatus.COMPLETED, 4)]


def test_an_outbound_login_may_not_truncate(hosted: Hosted) -> None:
    connection, login = hosted.push("Truncate Outbound", Direction.OUTBOUND)
    published = hosted.services.settings.outbound / str(connection.id) / "results.csv"
    published.parent.mkdir(parents=True, exist_ok=True)
    published.write_bytes(b"abc\n")
    with hosted.sftp(login) as sftp, pytest.raises(PermissionError):
        sftp.truncate("results.csv", 0)
    assert published.read_bytes() == b"abc\n"


def test_folders_are_made_only_while_the_push_folder_has_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attacker audit made 10,005 folders in 2 s (inodes without end), and the upload
    after them was refused as over the byte quota in a folder of 0 bytes."""
    from connectbatch.transfer.push import quota

    monkeypatch.setattr(quota, "MAX_SCAN_ENTRIES", 5)
    with running(tmp_path) as hosted:
        _connection, login = hosted.push("Acme")
        with hosted.sftp(login) as sftp:
            for i in range(6):  # the count is made before each: full once past 5
                sftp.mkdir(f"d{i}")
            with pytest.raises(OSError, match="too many files and folders in your folder: at most 5"):
                sftp.mkdir("d6")
            sftp.rmdir("d5")
            sftp.mkdir("again")  # room again once one goes
