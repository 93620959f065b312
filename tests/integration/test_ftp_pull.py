"""FTP and FTPS pulls against real servers on 127.0.0.1 (see `ftpd.py`).

Every behaviour runs against four servers, because partners run all kinds:

* `vsftpd`            — no MLSD, so listing goes through LIST + SIZE/MDTM; PORT disabled;
* `vsftpd-ftps`       — the same over explicit TLS with a self-signed certificate, encrypted
                        data, and TLS session reuse required on data connections;
* `pyftpdlib`         — MLSD;
* `pyftpdlib-no-mlsd` — advertises MLST in FEAT but answers MLSD with 500.
"""

from __future__ import annotations

import datetime as dt
import ftplib
import hashlib
import os
import re
import socket
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ftpd
import pytest
from ftpd import FtpServer
from helpers import call_csv

from connectbatch.errors import RemoteFileChangedError, TransportError
from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import CredentialInput, Services
from connectbatch.transfer.base import Endpoint, open_transport
from connectbatch.transfer.pull.ftp import FtpTransport, _parse_list_line
from connectbatch.transfer.pull.ftp import transport as ftp_module
from connectbatch.transfer.specs import FtpSpec, FtpTls

SERVERS = ["vsftpd", "vsftpd-ftps", "pyftpdlib", "pyftpdlib-no-mlsd"]
LISTED_BY = {
    "vsftpd": "LIST",
    "vsftpd-ftps": "LIST",
    "pyftpdlib": "MLSD",
    "pyftpdlib-no-mlsd": "LIST",
}
BIG_SIZE = 50 * 1024 * 1024
WRONG_PASSWORD = "Wr0ng-Secret-pw-31337"


# -- servers -------------------------------------------------------------------------------


def _vsftpd_or_skip() -> None:
    reason = ftpd.vsftpd_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def vsftpd_plain() -> Iterator[FtpServer]:
    _vsftpd_or_skip()
    with ftpd.vsftpd() as server:
        yield server


@pytest.fixture(scope="module")
def vsftpd_tls() -> Iterator[FtpServer]:
    _vsftpd_or_skip()
    with ftpd.vsftpd(tls=True) as server:
        yield server


@pytest.fixture(scope="module")
def pyftpd_mlsd() -> Iterator[FtpServer]:
    with ftpd.pyftpdlib_server(mlsd=True) as server:
        yield server


@pytest.fixture(scope="module")
def pyftpd_no_mlsd() -> Iterator[FtpServer]:
    with ftpd.pyftpdlib_server(mlsd=False) as server:
        yield server


@pytest.fixture(scope="module")
def pyftpd_no_size() -> Iterator[FtpServer]:
    """No MLSD and no SIZE (500): a link's size is learnt from the download."""
    with ftpd.pyftpdlib_server(mlsd=False, quirks=("no-size",)) as server:
        yield server


_FIXTURE_OF = {
    "vsftpd": "vsftpd_plain",
    "vsftpd-ftps": "vsftpd_tls",
    "pyftpdlib": "pyftpd_mlsd",
    "pyftpdlib-no-mlsd": "pyftpd_no_mlsd",
}


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> FtpServer:
    found: FtpServer = request.getfixturevalue(_FIXTURE_OF[request.param])
    return found


def endpoint(server: FtpServer, *, timeout: float = 10.0, **settings: Any) -> Endpoint:
    """How a connection would describe this server; FTPS servers get verify off
    (self-signed) unless the test says otherwise."""
    base: dict[str, Any] = {"tls": FtpTls.EXPLICIT, "verify": False} if server.tls else {"tls": FtpTls.NONE}
    base.update(settings)
    return Endpoint(
        host=server.host,
        port=server.port,
        username=server.username,
        password=server.password,
        spec=FtpSpec(**base),
        timeout=timeout,
    )


@pytest.fixture
def transport(server: FtpServer) -> Iterator[FtpTransport]:
    ftp = FtpTransport(endpoint(server))
    yield ftp
    ftp.close()


@pytest.fixture
def folder(server: FtpServer) -> str:
    """A fresh remote folder per test, so tests sharing a server never see each other."""
    return server.mkdir(f"/inbox-{uuid.uuid4().hex[:10]}")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def error_chain_text(exc: BaseException) -> str:
    """Everything a log would show of an error: message, repr and its causes."""
    parts: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        parts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


# -- listing -------------------------------------------------------------------------------


def test_lists_only_matching_finished_files(server: FtpServer, transport: FtpTransport, folder: str) -> None:
    for name in [
        "Conversions_2026_01.csv",
        "Conversions_2026_02.csv",
        "Conversions_2026_03 final.csv",  # spaces survive LIST parsing
        "Conversions_2026_04.csv.part",  # in flight
        "Conversions_2026_05.csv.tmp",
        "Conversions_2026_06.csv.filepart",
        "conversions_2026_07.csv",  # case matters
        "Conversions_20260_8.csv",  # `?` is one character
        "Clicks_2026_01.csv",
        "Conversions_2026_09.txt",
        "sub/Conversions_2026_10.csv",  # not recursive
    ]:
        server.put(f"{folder}/{name}", b"h\n1\n")
    server.mkdir(f"{folder}/Conversions_2026_11.csv")  # a folder with a matching name

    found = transport.list_files(folder, "Conversions_202?_*.csv")

    assert [remote.name for remote in found] == [
        "Conversions_2026_01.csv",
        "Conversions_2026_02.csv",
        "Conversions_2026_03 final.csv",
    ]
    for remote in found:
        assert remote.path == f"{folder}/{remote.name}"
        assert remote.ref == remote.path
        assert remote.extra["listed_by"] == LISTED_BY[server.kind]


def test_sizes_and_mtimes_are_exact_utc(server: FtpServer, transport: FtpTransport, folder: str) -> None:
    # Older than six months: LIST shows only the date, so the time must come from MDTM.
    old = dt.datetime(2025, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    recent = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=90)).replace(microsecond=0)
    server.put(f"{folder}/old.csv", b"x" * 12345, mtime=old)
    server.put(f"{folder}/recent.csv", b"y" * 7, mtime=recent)
    server.put(f"{folder}/empty.csv", b"", mtime=recent)

    found = {remote.name: remote for remote in transport.list_files(folder, "*.csv")}

    assert {name: remote.size for name, remote in found.items()} == {
        "old.csv": 12345,
        "recent.csv": 7,
        "empty.csv": 0,
    }
    assert found["old.csv"].mtime == old
    assert found["recent.csv"].mtime == recent
    for remote in found.values():
        assert remote.mtime is not None
        assert remote.mtime.utcoffset() == dt.timedelta(0)


def test_root_folder_and_trailing_slash(server: FtpServer, transport: FtpTransport, folder: str) -> None:
    server.put(f"{folder}/a.csv", b"1")
    assert [r.path for r in transport.list_files(folder + "/", "*.csv")] == [f"{folder}/a.csv"]
    assert transport.list_files("/", "*.nothing-has-this") == []


# -- fetch ---------------------------------------------------------------------------------


def test_fetch_is_byte_exact(server: FtpServer, transport: FtpTransport, folder: str, tmp_path: Path) -> None:
    contents = {
        "crlf.csv": b"a,b\r\n1,2\r\n",
        "mixed.csv": b"a\nb\rc\r\n\x00\xff\xfe caf\xe9\n",  # binary mode: nothing rewritten
        "empty.csv": b"",
        "utf16.csv": "\ufeffa,b\n1,ü\n".encode("utf-16"),
    }
    for name, data in contents.items():
        server.put(f"{folder}/{name}", data)

    for remote in transport.list_files(folder, "*.csv"):
        target = tmp_path / remote.name
        transport.fetch(remote, target)
        assert sha256(target.read_bytes()) == sha256(contents[remote.name]), remote.name


@pytest.fixture(scope="module")
def big_file() -> bytes:
    return os.urandom(BIG_SIZE)


@pytest.mark.slow
def test_fetch_50_mb(
    server: FtpServer, transport: FtpTransport, folder: str, tmp_path: Path, big_file: bytes
) -> None:
    server.put(f"{folder}/big.csv", big_file)
    (remote,) = transport.list_files(folder, "big.csv")
    assert remote.size == BIG_SIZE

    target = tmp_path / "big.csv"
    transport.fetch(remote, target)

    assert target.stat().st_size == BIG_SIZE
    assert sha256(target.read_bytes()) == sha256(big_file)
    server.local(f"{folder}/big.csv").unlink()


def test_fetch_of_a_file_still_growing_fails_and_leaves_nothing(
    server: FtpServer, transport: FtpTransport, folder: str, tmp_path: Path
) -> None:
    server.put(f"{folder}/growing.csv", b"12345")
    (remote,) = transport.list_files(folder, "*.csv")
    server.put(f"{folder}/growing.csv", b"1234567890")

    target = tmp_path / "growing.csv"
    with pytest.raises(TransportError, match=r"read 10 bytes, listed 5"):
        transport.fetch(remote, target)
    assert not target.exists()


def test_fetch_refuses_a_file_written_over_at_the_same_size(
    server: FtpServer, transport: FtpTransport, folder: str, tmp_path: Path
) -> None:
    """A partner's export rewritten in place (same size) while we read it gave one copy of
    two versions, loaded as a good file: the size alone did not tell (MDTM does)."""
    server.put(f"{folder}/daily.csv", b"a,b\n1,2\n", mtime=dt.datetime(2026, 1, 1, 10, 0, tzinfo=dt.UTC))
    (remote,) = transport.list_files(folder, "*.csv")
    server.put(f"{folder}/daily.csv", b"a,b\n3,4\n", mtime=dt.datetime(2026, 1, 1, 10, 5, tzinfo=dt.UTC))
    target = tmp_path / "daily.csv"
    with pytest.raises(RemoteFileChangedError, match="changed while being fetched"):
        transport.fetch(remote, target)
    assert not target.exists()


@pytest.mark.parametrize("action", ["delete", "archive"])
def test_a_file_replaced_after_it_was_taken_is_neither_deleted_nor_archived(
    server: FtpServer, transport: FtpTransport, folder: str, tmp_path: Path, action: str
) -> None:
    """After-success deleted or archived by path: a version the partner uploaded after our
    fetch, never read, was removed without a trace."""
    server.put(f"{folder}/daily.csv", b"a,b\n1,2\n", mtime=dt.datetime(2026, 1, 1, 10, 0, tzinfo=dt.UTC))
    (remote,) = transport.list_files(folder, "*.csv")
    transport.fetch(remote, tmp_path / "daily.csv")
    server.put(f"{folder}/daily.csv", b"a,b\n1,2\n5,6\n")
    with pytest.raises(RemoteFileChangedError, match="changed after it was taken"):
        transport.after_success(remote, action, "done")
    assert server.local(f"{folder}/daily.csv").read_bytes() == b"a,b\n1,2\n5,6\n"
    assert not server.local(f"{folder}/done").exists()


def test_a_server_whose_mdtm_is_in_local_time_is_still_taken_and_tidied(tmp_path: Path) -> None:
    """A server answering MDTM in its local time while its MLSD says UTC: checked against
    the MLSD listing, MDTM would call every file changed, never taken nor deleted. A file MLSD
    listed is checked with MLST, the same facts in the same time base."""
    with ftpd.pyftpdlib_server(quirks=("mdtm-local",)) as server:
        transport = FtpTransport(endpoint(server))
        try:
            folder = server.mkdir("/in")
            server.put(f"{folder}/a.csv", b"a,b\n1,2\n")
            (remote,) = transport.list_files(folder, "*.csv")
            assert remote.extra["listed_by"] == "MLSD"
            transport.fetch(remote, tmp_path / "a.csv")
            transport.after_success(remote, "delete", None)
        finally:
            transport.close()
        assert not server.local(f"{folder}/a.csv").exists()


def test_fetch_of_a_vanished_file_names_the_command(
    server: FtpServer, transport: FtpTransport, folder: str, tmp_path: Path
) -> None:
    server.put(f"{folder}/gone.csv", b"1")
    (remote,) = transport.list_files(folder, "*.csv")
    server.local(f"{folder}/gone.csv").unlink()

    with pytest.raises(TransportError) as caught:
        transport.fetch(remote, tmp_path / "gone.csv")
    assert f"RETR {folder}/gone.csv failed" in str(caught.value)
    assert "550" in str(caught.value)
    assert not (tmp_path / "gone.csv").exists()
    # A refused command leaves the login usable.
    assert transport.list_files(folder, "*.csv") == []


# -- after success -------------------------------------------------------------------------


def test_archive_creates_the_folder_and_never_overwrites(
    server: FtpServer, transport: FtpTransport, folder: str
) -> None:
    server.put(f"{folder}/Conv_1.csv", b"first")
    (remote,) = transport.list_files(folder, "Conv_*.csv")
    transport.after_success(remote, "archive", "done")  # relative to the file's folder

    assert not server.local(f"{folder}/Conv_1.csv").exists()
    assert server.local(f"{folder}/done/Conv_1.csv").read_bytes() == b"first"
    assert transport.list_files(folder, "Conv_*.csv") == []

    server.put(f"{folder}/Conv_1.csv", b"second")
    (again,) = transport.list_files(folder, "Conv_*.csv")
    transport.after_success(again, "archive", f"{folder}/done")  # absolute, same folder

    archived = sorted(path.name for path in server.local(f"{folder}/done").iterdir())
    assert len(archived) == 2
    assert archived[0] == "Conv_1.csv"
    assert re.fullmatch(r"Conv_1_\d{8}T\d{6}Z\.csv", archived[1]), archived
    assert server.local(f"{folder}/done/{archived[1]}").read_bytes() == b"second"
    assert server.local(f"{folder}/done/Conv_1.csv").read_bytes() == b"first"


def test_archive_into_a_new_nested_absolute_folder(
    server: FtpServer, transport: FtpTransport, folder: str
) -> None:
    server.put(f"{folder}/a.csv", b"a")
    (remote,) = transport.list_files(folder, "*.csv")
    archive = f"/archive-{uuid.uuid4().hex[:8]}/2026/11"
    transport.after_success(remote, "archive", archive)
    assert server.local(f"{archive}/a.csv").read_bytes() == b"a"


def test_delete_and_leave(server: FtpServer, transport: FtpTransport, folder: str) -> None:
    server.put(f"{folder}/keep.csv", b"k")
    server.put(f"{folder}/drop.csv", b"d")
    found = {remote.name: remote for remote in transport.list_files(folder, "*.csv")}

    transport.after_success(found["keep.csv"], "leave", None)
    transport.after_success(found["drop.csv"], "delete", None)

    assert [remote.name for remote in transport.list_files(folder, "*.csv")] == ["keep.csv"]


def test_after_success_refuses_unknown_actions(
    server: FtpServer, transport: FtpTransport, folder: str
) -> None:
    server.put(f"{folder}/a.csv", b"a")
    (remote,) = transport.list_files(folder, "*.csv")
    with pytest.raises(TransportError, match="unknown after-success action 'shred'"):
        transport.after_success(remote, "shred", None)
    with pytest.raises(TransportError, match="needs an archive folder"):
        transport.after_success(remote, "archive", None)
    assert server.local(f"{folder}/a.csv").exists()


# -- FTPS ----------------------------------------------------------------------------------


def test_ftps_verify_true_rejects_a_self_signed_certificate(vsftpd_tls: FtpServer) -> None:
    ftp = FtpTransport(endpoint(vsftpd_tls, verify=True))
    with pytest.raises(TransportError) as caught:
        ftp.list_files("/", "*.csv")
    message = str(caught.value)
    assert message.startswith(f"FTPS 127.0.0.1:{vsftpd_tls.port}: AUTH TLS")
    assert "certificate was not accepted" in message
    assert re.search(r"self.signed certificate", message), message
    assert "verify=false" in message and "ca_file" in message
    assert vsftpd_tls.password not in error_chain_text(caught.value)
    ftp.close()


def test_ftps_default_is_to_verify(vsftpd_tls: FtpServer) -> None:
    ftp = FtpTransport(
        Endpoint(
            host=vsftpd_tls.host,
            port=vsftpd_tls.port,
            username=vsftpd_tls.username,
            password=vsftpd_tls.password,
            spec=FtpSpec(tls=FtpTls.EXPLICIT),
            timeout=10,
        )
    )
    with pytest.raises(TransportError, match="certificate was not accepted"):
        ftp.list_files("/", "*.csv")


def test_ftps_trusts_a_given_ca_file(vsftpd_tls: FtpServer, tmp_path: Path) -> None:
    assert vsftpd_tls.cert_file is not None
    folder = vsftpd_tls.mkdir(f"/inbox-{uuid.uuid4().hex[:8]}")
    vsftpd_tls.put(f"{folder}/a.csv", b"secret data")
    with FtpTransport(endpoint(vsftpd_tls, verify="true", ca_file=str(vsftpd_tls.cert_file))) as ftp:
        (remote,) = ftp.list_files(folder, "*.csv")
        ftp.fetch(remote, tmp_path / "a.csv")
    assert (tmp_path / "a.csv").read_bytes() == b"secret data"


def test_ftps_missing_ca_file_is_readable(vsftpd_tls: FtpServer, tmp_path: Path) -> None:
    ftp = FtpTransport(endpoint(vsftpd_tls, verify="true", ca_file=str(tmp_path / "nope.pem")))
    with pytest.raises(TransportError, match=r"cannot load the CA file"):
        ftp.list_files("/", "*.csv")


def test_plain_ftp_to_an_ftps_only_server_is_refused_clearly(vsftpd_tls: FtpServer) -> None:
    ftp = FtpTransport(
        Endpoint(
            host=vsftpd_tls.host,
            port=vsftpd_tls.port,
            username=vsftpd_tls.username,
            password=vsftpd_tls.password,
            spec=FtpSpec(tls=FtpTls.NONE),
            timeout=10,
        )
    )
    with pytest.raises(TransportError) as caught:
        ftp.list_files("/", "*.csv")
    message = str(caught.value)
    assert message.startswith(f"FTP 127.0.0.1:{vsftpd_tls.port}: login as 'cbftp' failed")
    assert "530" in message and "encryption" in message
    assert vsftpd_tls.password not in error_chain_text(caught.value)


def test_vsftpd_ftps_requires_tls_session_reuse(vsftpd_tls: FtpServer) -> None:
    """Why the transport resumes the TLS session on data connections: stock ftplib cannot
    transfer anything from this (default-configured) vsftpd."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    plain = ftplib.FTP_TLS(context=context, timeout=10)
    plain.connect(vsftpd_tls.host, vsftpd_tls.port)
    try:
        plain.login(vsftpd_tls.username, vsftpd_tls.password)
        plain.prot_p()
        with pytest.raises(ftplib.error_perm, match="session reuse required"):
            plain.nlst("/")
    finally:
        plain.close()


def test_ftps_host_name_must_match_the_certificate(vsftpd_tls: FtpServer) -> None:
    assert vsftpd_tls.cert_file is not None
    ftp = FtpTransport(
        Endpoint(
            host="localhost",  # the certificate names only 127.0.0.1
            port=vsftpd_tls.port,
            username=vsftpd_tls.username,
            password=vsftpd_tls.password,
            spec=FtpSpec(tls=FtpTls.EXPLICIT, ca_file=str(vsftpd_tls.cert_file)),
            timeout=10,
        )
    )
    with pytest.raises(TransportError, match=r"(?i)hostname mismatch.*host name the certificate"):
        ftp.list_files("/", "*.csv")


def test_implicit_ftps_lists_and_fetches(tmp_path: Path) -> None:
    """Implicit FTPS (TLS before the greeting, the old port-990 style) against vsftpd with
    implicit_ssl, trusting its self-signed certificate through the CA file."""
    _vsftpd_or_skip()
    with ftpd.vsftpd(tls=True, implicit=True) as server:
        assert server.cert_file is not None
        server.put("/in/Conv_1.csv", b"a,b\n1,2\n")
        spec = FtpSpec(tls=FtpTls.IMPLICIT, ca_file=str(server.cert_file))
        with FtpTransport(
            Endpoint(host=server.host, port=server.port, username=server.username,
                     password=server.password, spec=spec, timeout=10)
        ) as ftp:  # fmt: skip
            (remote,) = ftp.list_files("/in", "*.csv")
            ftp.fetch(remote, tmp_path / "got.csv")
        assert (tmp_path / "got.csv").read_bytes() == b"a,b\n1,2\n"
        assert "FTPS" in ftp._where()


def test_implicit_ftps_to_a_plain_server_fails_readably(pyftpd_mlsd: FtpServer) -> None:
    ftp = FtpTransport(endpoint(pyftpd_mlsd, tls=FtpTls.IMPLICIT, verify=False))
    with pytest.raises(TransportError, match=r"FTPS 127\.0\.0\.1:\d+"):
        ftp.list_files("/", "*.csv")


# -- failures ------------------------------------------------------------------------------


def test_wrong_password_is_readable_and_secret(server: FtpServer) -> None:
    bad = Endpoint(
        host=server.host,
        port=server.port,
        username=server.username,
        password=WRONG_PASSWORD,
        spec=endpoint(server).spec,
        timeout=10,
    )
    ftp = FtpTransport(bad)
    with pytest.raises(TransportError) as caught:
        ftp.list_files("/", "*.csv")
    message = str(caught.value)
    assert f"127.0.0.1:{server.port}: login as {server.username!r} failed" in message
    assert "530" in message
    assert WRONG_PASSWORD not in error_chain_text(caught.value)
    assert isinstance(caught.value, OSError)  # callers may catch OSError for network trouble
    ftp.close()
    ftp.close()  # closing twice, or after a failed login, is harmless


def test_closed_port_is_readable() -> None:
    port = ftpd.free_port()
    plain = FtpSpec(tls=FtpTls.NONE)
    ftp = FtpTransport(
        Endpoint(host="127.0.0.1", port=port, username="u", password=WRONG_PASSWORD, spec=plain, timeout=5)
    )
    with pytest.raises(TransportError) as caught:
        ftp.list_files("/inbox", "*.csv")
    message = str(caught.value)
    assert message == (
        f"FTP 127.0.0.1:{port}: connect failed: "
        f"connection refused: is an FTP server listening on 127.0.0.1:{port}?"
    )
    assert WRONG_PASSWORD not in error_chain_text(caught.value)


def test_silent_server_times_out() -> None:
    # Accepts TCP connections (the kernel's backlog) but never greets.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        ftp = FtpTransport(Endpoint(host="127.0.0.1", port=port, username="u", password="p", timeout=0.5))
        with pytest.raises(TransportError, match=r"connect failed: no answer within 0\.5 s"):
            ftp.list_files("/", "*")


def test_missing_folder_is_readable(server: FtpServer, transport: FtpTransport) -> None:
    with pytest.raises(TransportError) as caught:
        transport.list_files("/no-such-folder", "*.csv")
    message = str(caught.value)
    assert "folder '/no-such-folder' does not exist or cannot be opened" in message
    assert "CWD /no-such-folder" in message and "550" in message
    assert server.password not in error_chain_text(caught.value)


def test_folder_must_be_absolute(transport: FtpTransport) -> None:
    with pytest.raises(TransportError, match="must be an absolute path"):
        transport.list_files("inbox", "*.csv")


def test_a_dropped_login_is_replaced(
    server: FtpServer, transport: FtpTransport, folder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server closing the kept control connection (idle timeout, restart) costs at most
    one failed call, and none when the connection was idle long enough to be probed."""
    server.put(f"{folder}/a.csv", b"a")
    assert len(transport.list_files(folder, "*.csv")) == 1

    def hang_up() -> None:
        kept = transport._ftp
        assert kept is not None and kept.sock is not None
        kept.sock.shutdown(socket.SHUT_RDWR)

    hang_up()
    with pytest.raises(TransportError, match=f"127.0.0.1:{server.port}: CWD {folder} failed"):
        transport.list_files(folder, "*.csv")
    assert len(transport.list_files(folder, "*.csv")) == 1  # logged in afresh

    monkeypatch.setattr(ftp_module, "IDLE_PROBE_SECONDS", 0.0)
    hang_up()
    assert len(transport.list_files(folder, "*.csv")) == 1  # NOOP noticed, no error


def test_registered_as_ftp(pyftpd_mlsd: FtpServer) -> None:
    ftp = open_transport("ftp", endpoint(pyftpd_mlsd))
    try:
        assert isinstance(ftp, FtpTransport)
        assert ftp.list_files("/", "*.nothing") == []
    finally:
        ftp.close()


# -- servers without MLSD: what LIST does not say -------------------------------------------


def _link_folder(server: FtpServer, folder: str, data: bytes) -> None:
    """A partner's export folder: a file linked in from elsewhere, a link to a folder, a
    link to nothing, all two hours old (the links' own times too, which LIST shows)."""
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).timestamp()
    server.put(f"{folder}/real/export-1.csv", data)
    server.mkdir(f"{folder}/real/sub")
    local = server.local(folder)
    (local / "calls_link.csv").symlink_to("real/export-1.csv")
    (local / "calls_dir.csv").symlink_to("real/sub")
    (local / "calls_gone.csv").symlink_to("real/gone.csv")
    for path in [*local.iterdir(), *(local / "real").iterdir()]:
        os.utime(path, (old, old), follow_symlinks=False)


def test_a_linked_file_is_listed_with_its_size_and_links_to_folders_or_nothing_are_not(
    server: FtpServer, transport: FtpTransport, folder: str
) -> None:
    """LIST leaves the session in ASCII mode, where pyftpdlib and ProFTPD refuse SIZE; that
    refusal once dropped every linked file of a server without MLSD, without a word."""
    _link_folder(server, folder, b"a,b\n1,2\n")

    listed = transport.list_files(folder, "calls*.csv")

    assert [(r.name, r.size) for r in listed] == [("calls_link.csv", 8)]


def test_without_size_a_linked_file_is_taken_and_the_download_tells_its_size(
    pyftpd_no_size: FtpServer, tmp_path: Path
) -> None:
    folder = pyftpd_no_size.mkdir(f"/nosize-{uuid.uuid4().hex[:10]}")
    _link_folder(pyftpd_no_size, folder, b"a,b\n1,2\n")
    ftp = FtpTransport(endpoint(pyftpd_no_size))
    try:
        listed = ftp.list_files(folder, "calls*.csv")
        # Without SIZE a link to nothing cannot be told from a file: its download fails
        # (recorded with the server's words), never a silent drop of a real file.
        assert [(r.name, r.size) for r in listed] == [("calls_gone.csv", None), ("calls_link.csv", None)]
        ftp.fetch(listed[1], tmp_path / "got")
    finally:
        ftp.close()
    assert (tmp_path / "got").read_bytes() == b"a,b\n1,2\n"


def _pull_connection(services: Services, server: FtpServer, folder: str, pattern: str = "calls*.csv") -> str:
    draft = Connection(
        f"Partner {uuid.uuid4().hex[:6]}", "call_conversions", Direction.INBOUND, Method.FTP,
        Methodology.PULL, host=server.host, port=server.port, folder=folder, pattern=pattern,
        transfer=FtpSpec(tls=FtpTls.NONE),
    )  # fmt: skip
    services.create_connection(draft, CredentialInput("partner", server.username, server.password))
    return draft.name


@pytest.mark.parametrize("fixture", ["pyftpd_no_mlsd", "pyftpd_no_size"])
def test_a_linked_file_is_loaded_once_from_a_server_without_mlsd(
    services: Services, fixture: str, request: pytest.FixtureRequest
) -> None:
    server: FtpServer = request.getfixturevalue(fixture)
    folder = server.mkdir(f"/linked-{uuid.uuid4().hex[:10]}")
    _link_folder(server, folder, call_csv(2, prefix="lnk"))
    server.put(
        f"{folder}/calls_plain.csv",
        call_csv(1, prefix="pln"),
        dt.datetime.now(dt.UTC) - dt.timedelta(hours=2),
    )
    name = _pull_connection(services, server, folder)

    first = services.pull(name)
    second = services.pull(name)

    assert first.status is RunStatus.COMPLETED, first.reason
    found = {f.name: (str(f.state), f.message or "") for f in services.run_files(first.id)}
    gone = found.pop("calls_gone.csv", None)
    assert found == {"calls_link.csv": ("loaded", ""), "calls_plain.csv": ("loaded", "")}
    if fixture == "pyftpd_no_size":  # told apart only by its download, refused in words
        assert gone is not None and gone[0] == "skipped" and "550" in gone[1]
    else:
        assert gone is None
    assert second.status is RunStatus.COMPLETED, second.reason
    assert services.run_files(second.id) == []


@pytest.mark.parametrize("style", ["list-dos24", "list-iso"])
def test_iis_24_hour_and_iso_dated_list_lines_give_names_sizes_and_times(style: str, tmp_path: Path) -> None:
    """IIS set to 24-hour times, and `ls` with ISO dates, once read as nothing at all: the
    folder looked empty ("0 seen"). Without MDTM the times are the LIST line's minutes."""
    when = dt.datetime(2026, 3, 4, 16, 27, 41, tzinfo=dt.UTC)
    with ftpd.pyftpdlib_server(mlsd=False, quirks=(style, "no-mdtm")) as server:
        server.put("/in/calls one.csv", b"a,b\n1,2\n", when)
        server.put("/in/calls [2].csv", b"x" * 300, when - dt.timedelta(days=400))
        server.mkdir("/in/calls folder.csv")
        ftp = FtpTransport(endpoint(server))
        try:
            listed = ftp.list_files("/in", "calls*.csv")
            ftp.fetch(listed[1], tmp_path / "got")
        finally:
            ftp.close()

    assert [(r.name, r.size, r.mtime, r.extra["listed_by"]) for r in listed] == [
        ("calls [2].csv", 300, (when - dt.timedelta(days=400)).replace(second=0), "LIST"),
        ("calls one.csv", 8, when.replace(second=0), "LIST"),
    ]
    assert (tmp_path / "got").read_bytes() == b"a,b\n1,2\n"


def test_a_file_turning_six_months_old_on_a_server_with_only_list_times_is_not_taken_again(
    services: Services,
) -> None:
    """Without MLSD and MDTM the time is the LIST line's: `Jun 18 17:28`, then `Jun 18  2026`
    once the file is six months old, read as midnight. Still the same file: taken once."""
    with ftpd.pyftpdlib_server(mlsd=False, quirks=("no-mdtm",)) as server:
        when = dt.datetime.now(dt.UTC) - dt.timedelta(days=170)
        path = server.put("/in/calls_old.csv", call_csv(1, prefix="old"), when)
        name = _pull_connection(services, server, "/in")
        first = services.pull(name)
        Path(server.extra["clock_file"]).write_text(str(40 * 86400))  # the server's clock: +40 days

        second = services.pull(name)
        stamp = (when + dt.timedelta(days=1)).timestamp()  # touched: a new version, same size
        os.utime(path, (stamp, stamp))
        third = services.pull(name)

    assert [str(f.state) for f in services.run_files(first.id)] == ["loaded"]
    assert second.status is RunStatus.COMPLETED, second.reason
    assert services.run_files(second.id) == []
    assert [f.name for f in services.run_files(third.id)] == ["calls_old.csv"]


# -- pieces without a server ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "-rw-r--r--    1 1001     1001         1234 Mar 04  2025 Conv 1.csv",
            ("Conv 1.csv", "file", 1234, dt.datetime(2025, 3, 4, tzinfo=dt.UTC)),
        ),
        (
            "-rw-r--r--   1 owner group 7 Nov 20 12:05 a.csv",
            ("a.csv", "file", 7, dt.datetime(2026, 11, 20, 12, 5, tzinfo=dt.UTC)),
        ),
        (
            "-rw-r--r--   1 owner 7 Dec 24 23:59 b.csv",  # no group column; last year
            ("b.csv", "file", 7, dt.datetime(2025, 12, 24, 23, 59, tzinfo=dt.UTC)),
        ),
        (
            "drwxr-xr-x    2 1001     1001         4096 Nov 23 12:52 archive",
            ("archive", "dir", 4096, dt.datetime(2026, 11, 23, 12, 52, tzinfo=dt.UTC)),
        ),
        (
            "lrwxrwxrwx    1 0 0 9 Nov 23 12:52 latest.csv -> x/1.csv",
            ("latest.csv", "link", 9, dt.datetime(2026, 11, 23, 12, 52, tzinfo=dt.UTC)),
        ),
        (
            "11-20-26  02:05PM                 1234 Conv_2.csv",
            ("Conv_2.csv", "file", 1234, dt.datetime(2026, 11, 20, 14, 5, tzinfo=dt.UTC)),
        ),
        (
            "11-20-2026  09:15AM       <DIR>          done",
            ("done", "dir", None, dt.datetime(2026, 11, 20, 9, 15, tzinfo=dt.UTC)),
        ),
        ("total 12", None),
        ("Conv_3.csv", None),
    ],
)
def test_parse_list_line(line: str, expected: tuple[str, str, int | None, dt.datetime] | None) -> None:
    now = dt.datetime(2026, 11, 23, 13, 0, tzinfo=dt.UTC)
    entry = _parse_list_line(line, now)
    if expected is None:
        assert entry is None
    else:
        assert entry is not None
        assert (entry.name, entry.kind, entry.size, entry.mtime) == expected
