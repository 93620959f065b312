"""Real FTP servers for the integration tests, each in its own process on 127.0.0.1.

* **vsftpd** (Debian's package; C, a different implementation from pyftpdlib, which our
  own hosted server uses, so the pull client is not only tested against our own server's
  quirks). A local Linux user `cbftp` logs in with a password through PAM and is chrooted
  into a fresh folder, so remote paths look like a partner's (`/inbox/...`). vsftpd has no
  MLSD, which makes it the natural test of the LIST + SIZE/MDTM fallback. With `tls=True`
  it is an explicit-FTPS server with a self-signed certificate made by `openssl`, which
  insists on encrypted logins and data and (its default) on TLS session reuse for data
  connections. Active mode (PORT) is switched off, so a client must use passive mode.
* **pyftpdlib** in a subprocess (this file run as a script): with MLSD, and with MLSD
  removed while MLST is still advertised in FEAT, the "500 on MLSD" fallback path.

Each server is stopped by its process id (the whole process group it leads, so vsftpd's
per-session children go too). `vsftpd()` needs root: it creates the Linux user, sets its
password, and vsftpd itself must start as root to chroot and drop privileges; it installs
the `vsftpd` package through `scripts/ensure-debian-packages.sh` when it is missing.

    python tests/integration/ftpd.py --root DIR --port N --user U --password P [--no-mlsd]
        [--no-sendfile] [--no-size] [--no-mdtm] [--list-dos24 | --list-iso] [--clock-file F]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "tests") not in sys.path:  # `helpers` when this file runs as the server's script
    sys.path.insert(0, str(REPO / "tests"))

from helpers.ports import free_port  # noqa: E402

VSFTPD = Path("/usr/sbin/vsftpd")
FTP_USER = "cbftp"
# A fixed, known password for the throw-away test user (set again on every start).
FTP_PASSWORD = "cbftp-Test-pw-4242"
FTP_HOME = Path("/var/lib/cbftp")
STARTUP_SECONDS = 15.0


@dataclass
class FtpServer:
    """A running FTP server and the local folder that is its `/`."""

    kind: str
    host: str
    port: int
    username: str
    password: str
    root: Path
    process: subprocess.Popen[bytes]
    log: Path
    tls: bool = False
    cert_file: Path | None = None
    owner: tuple[int, int] | None = None  # uid, gid the server's user needs on files
    extra: dict[str, str] = field(default_factory=dict)

    def local(self, remote_path: str) -> Path:
        """The local path behind a remote absolute path."""
        return self.root / remote_path.lstrip("/")

    def mkdir(self, remote_path: str) -> str:
        """Create a remote folder (and its parents); returns the remote path."""
        path = self.local(remote_path)
        path.mkdir(parents=True, exist_ok=True)
        for part in [path, *path.parents]:
            if part == self.root or self.root not in part.parents:
                break
            self._own(part)
        return "/" + remote_path.strip("/")

    def put(self, remote_path: str, data: bytes, mtime: dt.datetime | None = None) -> Path:
        """Write a file as the partner would have left it, with an optional mtime."""
        path = self.local(remote_path)
        self.mkdir(str(Path(remote_path).parent))
        path.write_bytes(data)
        self._own(path)
        if mtime is not None:
            stamp = mtime.timestamp()
            os.utime(path, (stamp, stamp))
        return path

    def _own(self, path: Path) -> None:
        if self.owner is not None:
            os.chown(path, *self.owner)

    def stop(self) -> None:
        """Stop the server by its process id (and its process group)."""
        stop_process(self.process)


def stop_process(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the process group `process` leads, SIGKILL if it lingers past `grace` seconds
    (servers here; `connectbatch worker` processes in the distributed tests)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
    # Session children of vsftpd live in the same group; make sure none is left behind.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def wait_for_banner(
    process: subprocess.Popen[bytes],
    port: int,
    log: Path,
    timeout: float = STARTUP_SECONDS,
    *,
    implicit_tls: bool = False,
) -> None:
    """Wait until the server greets with `220` (inside TLS for an implicit-FTPS server);
    fail with its log if it dies first."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"FTP server exited with {process.returncode} before listening on {port}:\n" + _tail(log)
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as plain:
                sock = plain
                if implicit_tls:
                    context = ssl.create_default_context()
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                    sock = context.wrap_socket(plain)
                banner = sock.recv(200)
                if banner.startswith(b"220"):
                    sock.sendall(b"QUIT\r\n")
                    return
                last_error = repr(banner)
        except OSError as exc:
            last_error = str(exc)
        time.sleep(0.05)
    stop_process(process)
    raise RuntimeError(f"FTP server on port {port} did not answer ({last_error}):\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- vsftpd --------------------------------------------------------------------------------


def vsftpd_unavailable() -> str | None:
    """Why vsftpd cannot be used here, or None. Installs the package when missing."""
    if os.geteuid() != 0:
        return "vsftpd tests need root (a local Linux user, and vsftpd chroots and drops privileges)"
    if not VSFTPD.exists():
        # Other sessions may hold apt's lock for a while; try a few times.
        for attempt in range(12):
            result = subprocess.run(
                ["bash", "scripts/ensure-debian-packages.sh", "vsftpd"],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode == 0 and VSFTPD.exists():
                break
            if "lock" not in (result.stderr + result.stdout) or attempt == 11:
                return f"cannot install vsftpd: {result.stderr.strip()[-500:]}"
            time.sleep(5)
    if shutil.which("openssl") is None:
        return "openssl is needed to make the FTPS test certificate"
    return None


def ensure_ftp_user() -> tuple[int, int]:
    """Create the `cbftp` test user if absent, give it the known password and a home
    vsftpd can enter (it changes into the home before the chroot). Returns (uid, gid)."""
    try:
        entry = pwd.getpwnam(FTP_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--no-create-home",
                "--home-dir",
                str(FTP_HOME),
                "--shell",
                "/bin/bash",
                FTP_USER,
            ],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(FTP_USER)
    home = Path(entry.pw_dir)
    if not home.is_dir():
        home.mkdir(parents=True, exist_ok=True)
        os.chown(home, entry.pw_uid, entry.pw_gid)
    subprocess.run(
        ["chpasswd"],
        input=f"{FTP_USER}:{FTP_PASSWORD}\n",
        text=True,
        check=True,
        capture_output=True,
    )
    return entry.pw_uid, entry.pw_gid


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (also usable as its own CA file)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
        check=True,
        capture_output=True,
    )
    key.chmod(0o600)
    return cert, key


def _vsftpd_config(
    work: Path, root: Path, port: int, cert: tuple[Path, Path] | None, implicit: bool = False
) -> str:
    lines = [
        "listen=YES",
        "listen_ipv6=NO",
        "listen_address=127.0.0.1",
        f"listen_port={port}",
        "background=NO",
        "anonymous_enable=NO",
        "local_enable=YES",
        "write_enable=YES",
        "local_umask=022",
        f"local_root={root}",
        "chroot_local_user=YES",
        "allow_writeable_chroot=YES",
        # The container has no seccomp/namespace privileges vsftpd's sandboxing wants.
        "seccomp_sandbox=NO",
        "isolate=NO",
        "isolate_network=NO",
        "pasv_enable=YES",
        "pasv_address=127.0.0.1",
        # 0 = any free ephemeral port per transfer: never clashes with other tests.
        "pasv_min_port=0",
        "pasv_max_port=0",
        "port_enable=NO",
        "pam_service_name=vsftpd",
        f"secure_chroot_dir={work / 'empty'}",
        "delay_failed_login=0",
        "use_localtime=NO",
        "xferlog_enable=YES",
        "xferlog_std_format=NO",
        "log_ftp_protocol=YES",
        "syslog_enable=NO",
        f"vsftpd_log_file={work / 'vsftpd.log'}",
    ]
    if cert is not None:
        lines += [
            "ssl_enable=YES",
            f"rsa_cert_file={cert[0]}",
            f"rsa_private_key_file={cert[1]}",
            "force_local_logins_ssl=YES",
            "force_local_data_ssl=YES",
            "allow_anon_ssl=NO",
            "ssl_sslv2=NO",
            "ssl_sslv3=NO",
            "ssl_tlsv1=YES",
            "require_ssl_reuse=YES",
            "ssl_ciphers=HIGH",
        ]
        if implicit:
            lines.append("implicit_ssl=YES")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def vsftpd(*, tls: bool = False, implicit: bool = False) -> Iterator[FtpServer]:
    """A vsftpd on 127.0.0.1 at a free port; plain FTP, explicit FTPS with `tls`, or
    implicit FTPS (TLS from the first byte) with `implicit` too."""
    reason = vsftpd_unavailable()
    if reason:
        raise RuntimeError(reason)
    owner = ensure_ftp_user()
    # Not under pytest's tmp_path: that is 0700 root, and the FTP user must reach its root.
    work = Path(tempfile.mkdtemp(prefix="cb-vsftpd-"))
    try:
        work.chmod(0o755)
        (work / "empty").mkdir(mode=0o755)
        root = work / "root"
        root.mkdir(mode=0o755)
        os.chown(root, *owner)
        cert = make_certificate(work) if tls else None
        log = work / "vsftpd.out"
        for attempt in range(3):
            port = free_port()
            config = work / "vsftpd.conf"
            config.write_text(_vsftpd_config(work, root, port, cert, implicit))
            config.chmod(0o600)
            with log.open("ab") as out:
                process = subprocess.Popen(
                    [str(VSFTPD), str(config)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            try:
                wait_for_banner(process, port, log, implicit_tls=implicit)
                break
            except RuntimeError:
                stop_process(process)
                if attempt == 2:
                    raise
        server = FtpServer(
            kind=("vsftpd-ftps-implicit" if implicit else "vsftpd-ftps") if tls else "vsftpd",
            host="127.0.0.1",
            port=port,
            username=FTP_USER,
            password=FTP_PASSWORD,
            root=root,
            process=process,
            log=work / "vsftpd.log",
            tls=tls,
            cert_file=cert[0] if cert else None,
            owner=owner,
        )
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def any_server() -> Iterator[FtpServer]:
    """vsftpd when it can run here (root, installed), else pyftpdlib: a real server either way."""
    if vsftpd_unavailable() is None:
        with vsftpd() as found:
            yield found
    else:
        with pyftpdlib_server(mlsd=True) as found:
            yield found


# -- pyftpdlib -----------------------------------------------------------------------------


@contextlib.contextmanager
def pyftpdlib_server(
    *,
    mlsd: bool = True,
    user: str = "partner",
    password: str = "partner-pw-9817",
    sendfile: bool = True,
    quirks: tuple[str, ...] = (),
) -> Iterator[FtpServer]:
    """pyftpdlib in a subprocess; `mlsd=False` removes MLSD but keeps MLST in FEAT;
    `sendfile=False` reads files (a named pipe too) instead of sendfile(2)-ing them.

    `quirks` are partners' servers' habits (`_serve`'s switches without the dashes):
    "no-size", "no-mdtm" (commands removed), "list-dos24" (IIS LIST lines with 24-hour
    times), "list-iso" (`ls -l --time-style=long-iso` lines), "mdtm-local" (MDTM an hour
    off MLSD, as a server answering it in local time). Its clock for LIST (which
    shows the year instead of the time for files older than six months) is ahead by the
    seconds `FtpServer.extra["clock_file"]` holds, read on every LIST."""
    work = Path(tempfile.mkdtemp(prefix="cb-pyftpd-"))
    try:
        root = work / "root"
        root.mkdir()
        log = work / "pyftpd.log"
        for attempt in range(3):
            port = free_port()
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--root",
                str(root),
                "--port",
                str(port),
                "--user",
                user,
                "--password",
                password,
                "--log",
                str(log),
            ]
            if not mlsd:
                command.append("--no-mlsd")
            if not sendfile:
                command.append("--no-sendfile")
            command += [f"--{quirk}" for quirk in quirks]
            command += ["--clock-file", str(work / "clock")]
            with log.open("ab") as out:
                process = subprocess.Popen(
                    command,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            try:
                wait_for_banner(process, port, log)
                break
            except RuntimeError:
                stop_process(process)
                if attempt == 2:
                    raise
        server = FtpServer(
            kind="pyftpdlib" if mlsd else "pyftpdlib-no-mlsd",
            host="127.0.0.1",
            port=port,
            username=user,
            password=password,
            root=root,
            process=process,
            log=log,
            extra={"clock_file": str(work / "clock")},
        )
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _serve(argv: list[str] | None = None) -> None:
    """Entry point of the pyftpdlib subprocess."""
    import logging

    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--log")
    parser.add_argument("--no-mlsd", action="store_true")
    parser.add_argument("--no-sendfile", action="store_true")
    for quirk in ("no-size", "no-mdtm", "list-dos24", "list-iso", "mdtm-local"):
        parser.add_argument(f"--{quirk}", action="store_true")
    parser.add_argument("--clock-file")
    args = parser.parse_args(argv)
    logging.basicConfig(filename=args.log, level=logging.INFO)

    authorizer = DummyAuthorizer()
    authorizer.add_user(args.user, args.password, args.root, perm="elradfmwMT")

    class Handler(FTPHandler):  # type: ignore[misc]
        pass

    Handler.authorizer = authorizer
    Handler.permit_foreign_addresses = False
    Handler.auth_failed_timeout = 0  # tests of wrong passwords need not wait 3 s
    if args.no_sendfile:
        Handler.use_sendfile = False
    removed = {"MLSD"} if args.no_mlsd else set()
    removed |= {"SIZE"} if args.no_size else set()
    removed |= {"MDTM"} if args.no_mdtm else set()
    Handler.proto_cmds = {k: v for k, v in FTPHandler.proto_cmds.items() if k not in removed}
    if args.mdtm_local:  # MDTM in the server's local time (UTC+1) while MLSD says UTC

        def ftp_mdtm(self: FTPHandler, path: str) -> None:
            stamp = os.path.getmtime(path)
            self.respond("213 " + time.strftime("%Y%m%d%H%M%S", time.gmtime(stamp + 3600)))

        Handler.ftp_MDTM = ftp_mdtm
    Handler.abstracted_fs = _quirky_filesystem(args.clock_file, args.list_dos24, args.list_iso)
    server = FTPServer(("127.0.0.1", args.port), Handler)
    server.serve_forever()


def _quirky_filesystem(clock_file: str | None, dos24: bool, iso: bool) -> type:
    """pyftpdlib's filesystem with LIST lines as other servers write them, and a LIST clock
    that can be moved ahead (the seconds in `clock_file`)."""
    from pyftpdlib.filesystems import AbstractedFS

    def offset() -> float:
        try:
            return float(Path(clock_file).read_text()) if clock_file else 0.0
        except (OSError, ValueError):
            return 0.0

    class QuirkyFS(AbstractedFS):  # type: ignore[misc]
        def format_list(self, basedir: str, listing: list[str], ignore_err: bool = True) -> Iterator[bytes]:
            if not (dos24 or iso):
                real, ahead = time.time, offset()
                time.time = lambda: real() + ahead
                try:
                    yield from super().format_list(basedir, listing, ignore_err)
                finally:
                    time.time = real
                return
            for name in listing:
                path = os.path.join(basedir, name)
                st = os.stat(path)
                stamp = time.gmtime(st.st_mtime)
                is_dir = os.path.isdir(path)
                if dos24:
                    size = "<DIR>" if is_dir else str(st.st_size)
                    line = f"{time.strftime('%m-%d-%y  %H:%M', stamp)} {size:>20} {name}"
                else:
                    mode = "drwxr-xr-x" if is_dir else "-rw-r--r--"
                    line = (
                        f"{mode} 1 owner group {st.st_size} {time.strftime('%Y-%m-%d %H:%M', stamp)} {name}"
                    )
                yield (line + "\r\n").encode("utf8", self.cmd_channel.unicode_errors)

    return QuirkyFS


if __name__ == "__main__":
    _serve()
