"""A partner's server that never ends a download, against real servers (OpenSSH's sshd and
pyftpdlib): a file that keeps growing while we fetch it, or one listed larger than the limit.

Without a cap a pull read such a file to its end, into our own disk (`incoming/`, beside the
staged files and the database): a partner server (or whoever controls it) could fill the disk
and stop every other partner's ingest. The fetch stops at CONNECTBATCH_MAX_FILE_BYTES, the
file is not taken (its ledger line says why) and the files beside it go on."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import ftpd
import pytest
from helpers import call_csv
from sshd import Sshd

from connectbatch.models import Connection, Direction, FileState, Method, Methodology
from connectbatch.services import CredentialInput, Services
from connectbatch.settings import Settings
from connectbatch.transfer.specs import FtpSpec, FtpTls, SftpSpec

pytest_plugins = ["sshd"]

LIMIT = 1024 * 1024
GROWS_TO = 64 * 1024 * 1024  # what an uncapped pull would read (a real attack: no end)
OLD = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", lock_timeout=10.0, max_file_bytes=LIMIT)


@pytest.fixture(scope="module")
def ftp_server() -> Iterator[ftpd.FtpServer]:
    # pyftpdlib sends a file until it ends (vsftpd, the size it saw at open); read, not
    # sendfile(2)-d, which a named pipe cannot be.
    with ftpd.pyftpdlib_server(mlsd=True, sendfile=False) as found:
        yield found


# The partner's side, in a process of its own: the moment the server opens the file for our
# download (listing it does not open it), the file grows to GROWS_TO (sparse), as if the
# partner's server went on sending. A write lease (fcntl F_SETLEASE) holds the server's open
# until the file has grown: watching with inotify instead, a loaded machine woke the watcher
# after the download had already ended (CI, 4 pytest-xdist workers on 2 cores).
GROW_ON_OPEN = """
import fcntl, os, signal, sys
path, size = sys.argv[1], int(sys.argv[2])
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGIO})  # the lease break, taken below
fd = os.open(path, os.O_RDWR)
fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
print("watching", flush=True)
if signal.sigtimedwait({signal.SIGIO}, 60) is not None:
    os.ftruncate(fd, size)
fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
os.close(fd)
"""


ENDLESS_WRITER = """
import sys
path, size = sys.argv[1], int(sys.argv[2])
with open(path, "wb", buffering=0) as out:
    block = bytes(65536)
    for _ in range(size // len(block)):
        out.write(block)
"""


def growing(path: Path) -> Callable[[], int]:
    """Make `path` grow to GROWS_TO when it is opened; the returned stop() ends the watch and
    returns how large the file is then."""
    watcher = subprocess.Popen(
        [sys.executable, "-c", GROW_ON_OPEN, str(path), str(GROWS_TO)], stdout=subprocess.PIPE
    )
    assert watcher.stdout is not None and watcher.stdout.readline() == b"watching\n"

    def finish() -> int:
        if watcher.poll() is None:
            watcher.kill()
        watcher.wait(10)
        return path.stat().st_size

    return finish


def sftp_pull(services: Services, server: Sshd, folder: Path) -> Connection:
    draft = Connection(
        "Partner SFTP", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
        host=server.host, port=server.port, folder=str(folder), pattern="*.csv",
        transfer=SftpSpec(request_size=4096),  # many reads before the listed end: it has grown by then
    )  # fmt: skip
    created, _ = services.create_connection(draft, CredentialInput("partner", server.user, server.password))
    return created


def ftp_pull(services: Services, server: ftpd.FtpServer, folder: str) -> Connection:
    draft = Connection(
        "Partner FTP", "call_conversions", Direction.INBOUND, Method.FTP, Methodology.PULL,
        host=server.host, port=server.port, folder=folder, pattern="*.csv",
        transfer=FtpSpec(tls=FtpTls.NONE),
    )  # fmt: skip
    created, _ = services.create_connection(
        draft, CredentialInput("partner", server.username, server.password)
    )
    return created


def outcome(services: Services, name: str) -> dict[str, tuple[FileState, str]]:
    run = services.runs(name)[0]
    return {f.name: (f.state, f.message or "") for f in services.run_files(run.id)}


def assert_stopped_at_the_limit(found: dict[str, tuple[FileState, str]]) -> None:
    state, message = found["endless.csv"]
    assert state is FileState.SKIPPED
    assert f"larger than the limit of {LIMIT:,} bytes" in message, message
    assert found["good.csv"][0] is FileState.LOADED  # the file beside it went in


def test_an_sftp_file_that_never_stops_growing_is_not_downloaded_past_the_limit(
    services: Services, sshd_server: Sshd, sftp_folder: Path
) -> None:
    sshd_server.put(sftp_folder, "good.csv", call_csv(3, prefix="ok"), OLD)
    endless = sshd_server.put(sftp_folder, "endless.csv", b"CallSessionId\r\n" + b"1\r\n" * 300_000, OLD)
    sftp_pull(services, sshd_server, sftp_folder)
    stop = growing(endless)
    try:
        services.pull("Partner SFTP")
    finally:
        grew_to = stop()
    assert grew_to > 2 * LIMIT  # it really did go on growing while we fetched
    assert_stopped_at_the_limit(outcome(services, "Partner SFTP"))
    assert not list((services.settings.home / "incoming").rglob("payload-*"))


def test_an_ftp_download_that_never_ends_is_cut_at_the_limit(
    services: Services, ftp_server: ftpd.FtpServer
) -> None:
    folder = ftp_server.mkdir("/endless")
    ftp_server.put(f"{folder}/good.csv", call_csv(3, prefix="ok"), OLD)
    # A named pipe: listed as a file of 0 bytes, its download ends when the partner's writer
    # stops (never, in a real attack; here after GROWS_TO bytes, or when we hang up).
    endless = ftp_server.local(f"{folder}/endless.csv")
    os.mkfifo(endless)
    os.utime(endless, (OLD.timestamp(), OLD.timestamp()))
    writer = subprocess.Popen([sys.executable, "-c", ENDLESS_WRITER, str(endless), str(GROWS_TO)],
                              stderr=subprocess.DEVNULL)  # fmt: skip
    ftp_pull(services, ftp_server, folder)
    try:
        services.pull("Partner FTP")
    finally:
        writer.kill()
        writer.wait(10)
    assert_stopped_at_the_limit(outcome(services, "Partner FTP"))


def test_a_file_listed_over_the_limit_is_not_fetched_at_all(
    services: Services, sshd_server: Sshd, sftp_folder: Path
) -> None:
    sshd_server.put(sftp_folder, "good.csv", call_csv(3, prefix="ok"), OLD)
    sshd_server.put_large(sftp_folder, "endless.csv", 3 * LIMIT, OLD)
    sftp_pull(services, sshd_server, sftp_folder)
    services.pull("Partner SFTP")
    assert_stopped_at_the_limit(outcome(services, "Partner SFTP"))
    # The next run does not fetch it either, nor record the same reason again.
    services.pull("Partner SFTP")
    runs = services.runs("Partner SFTP")
    assert len(runs) == 1 or all(f.name != "endless.csv" for f in services.run_files(runs[0].id))
