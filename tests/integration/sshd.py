"""A real OpenSSH `sshd` on 127.0.0.1 for the SFTP pull tests and the SFTP benchmark.

Why a real sshd and not paramiko's server class: the partners we pull from run OpenSSH, and the
things that break in production (host-key algorithms, RSA signature negotiation, key formats,
the server's read-size limits, speed) only show up against the real thing.

Usable two ways:

* from pytest, through the session fixture `sshd_server` and the per-test `sftp_folder`
  (a test module enables them with ``pytest_plugins = ["sshd"]``);
* from plain Python (the benchmark): ``server = start_sshd(); ...; server.stop()``.

The server runs as root (it has to: it switches to the test user after login and checks the
password against /etc/shadow, since PAM is off), listens on a free port, uses its own host keys
and configuration in a private work folder, and never touches the system's sshd setup.
"""

from __future__ import annotations

import datetime as dt
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers.ports import free_port

REPO = Path(__file__).resolve().parents[2]
SSHD_BINARY = Path("/usr/sbin/sshd")  # sshd re-executes itself, so it needs an absolute path
DEBIAN_PACKAGES = ("openssh-server", "openssh-client")
TEST_USER = "cbtest"
# A test account on a throw-away server bound to 127.0.0.1; the tests need a known password.
TEST_PASSWORD = "cb-Test-pass-4Rt9!"
HOST_KEY_TYPES = ("ed25519", "ecdsa", "rsa")
START_TIMEOUT = 15.0


class SshdError(RuntimeError):
    """The test sshd could not be set up (missing package, port, bad configuration)."""


@dataclass(frozen=True)
class ClientKey:
    """A client key pair made by ssh-keygen: the private key's text as a user would paste it,
    its file (for the `sftp` command) and the public line put in authorized_keys."""

    kind: str
    private_text: str
    path: Path
    public_line: str
    passphrase: str | None = None


@dataclass
class Sshd:
    """A running test sshd and what a client needs to reach it."""

    host: str
    port: int
    user: str
    password: str
    home: Path
    workdir: Path
    process: subprocess.Popen[bytes]
    host_keys: dict[str, str]  # "ed25519" -> "ssh-ed25519 AAAA..." (the public line, no comment)
    _keys: dict[tuple[str, str | None, str], ClientKey] = field(default_factory=dict)

    @property
    def authorized_keys(self) -> Path:
        return self.workdir / "authorized_keys"

    @property
    def log_path(self) -> Path:
        return self.workdir / "sshd.log"

    def log(self) -> str:
        """sshd's own log: the first thing to read when a login fails for no clear reason."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # --- client keys -------------------------------------------------------------------------

    def client_key(
        self, kind: str = "ed25519", passphrase: str | None = None, fmt: str = "openssh"
    ) -> ClientKey:
        """A client key of `kind` (ed25519, ecdsa, rsa), authorised for the test user.

        `fmt` is "openssh" (the new format ssh-keygen writes by default) or "pem" (the legacy
        `BEGIN RSA/EC PRIVATE KEY` format partners still hand out). Keys are cached per session
        because RSA generation and bcrypt rounds cost time."""
        cache_key = (kind, passphrase, fmt)
        if cache_key in self._keys:
            return self._keys[cache_key]
        keydir = self.workdir / "client-keys"
        keydir.mkdir(mode=0o700, exist_ok=True)
        path = keydir / f"id_{kind}_{fmt}_{len(self._keys)}"
        command = [
            "ssh-keygen",
            "-q",
            "-t",
            kind,
            "-N",
            passphrase or "",
            "-C",
            "",
            "-f",
            str(path),
        ]
        if kind == "rsa":
            command[4:4] = ["-b", "3072"]
        if fmt == "pem":
            command[4:4] = ["-m", "PEM"]
        _run(command)
        public_line = " ".join(path.with_suffix(".pub").read_text().split()[:2])
        key = ClientKey(kind, path.read_text(), path, public_line, passphrase)
        self.authorize(public_line)
        self._keys[cache_key] = key
        return key

    def authorize(self, public_line: str) -> None:
        """Let a public key log in as the test user (sshd rereads the file on every login)."""
        with self.authorized_keys.open("a") as handle:
            handle.write(public_line.strip() + "\n")

    # --- files on the "partner's" side -----------------------------------------------------------

    def make_folder(self, prefix: str = "pull-") -> Path:
        """A fresh folder in the test user's home, owned by that user so that the SFTP session
        can rename and delete in it (archive / delete after success)."""
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir=self.home))
        self.chown(folder)
        folder.chmod(0o755)
        return folder

    def put(
        self,
        folder: Path,
        name: str,
        data: bytes = b"",
        mtime: dt.datetime | float | None = None,
    ) -> Path:
        """Drop a file into `folder` as if the partner had uploaded it, with the given
        modification time (a datetime, tz-aware or UTC-naive, or a Unix timestamp)."""
        path = folder / name
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True)
            self.chown(path.parent)
        path.write_bytes(data)
        self.chown(path)
        if mtime is not None:
            set_mtime(path, mtime)
        return path

    def put_large(self, folder: Path, name: str, size: int, mtime: dt.datetime | float | None = None) -> Path:
        """A `size`-byte file of random (incompressible) bytes, written in 1 MiB blocks so that
        a 200 MB file costs well under a second and little memory."""
        path = folder / name
        with path.open("wb") as handle:
            remaining = size
            while remaining > 0:
                block = os.urandom(min(1 << 20, remaining))
                handle.write(block)
                remaining -= len(block)
        self.chown(path)
        if mtime is not None:
            set_mtime(path, mtime)
        return path

    def chown(self, path: Path) -> None:
        entry = pwd.getpwnam(self.user)
        os.chown(path, entry.pw_uid, entry.pw_gid)

    # --- lifecycle -------------------------------------------------------------------------------

    def stop(self, keep_workdir: bool = False) -> None:
        """Stop this sshd (by its own PID, never by name: others may run theirs) and remove
        its work folder. Idempotent."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if not keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def set_mtime(path: Path, mtime: dt.datetime | float) -> None:
    """Set a file's modification (and access) time; naive datetimes are taken as UTC."""
    if isinstance(mtime, dt.datetime):
        if mtime.tzinfo is None:
            mtime = mtime.replace(tzinfo=dt.UTC)
        stamp = mtime.timestamp()
    else:
        stamp = float(mtime)
    os.utime(path, (stamp, stamp))


def _run(command: list[str], stdin_text: str | None = None) -> None:
    result = subprocess.run(command, input=stdin_text, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SshdError(
            f"{' '.join(command[:3])} ... failed ({result.returncode}): "
            f"{(result.stderr or result.stdout).strip()}"
        )


def ensure_openssh() -> None:
    """Install OpenSSH's server and client if missing, through the repository's script (a no-op
    when they are installed; it runs apt-get only when something is missing). Other sessions
    may hold apt's lock for a while, so a lock failure is retried for about a minute."""
    if SSHD_BINARY.exists() and shutil.which("ssh-keygen") and shutil.which("sftp"):
        return
    for attempt in range(12):
        result = subprocess.run(
            ["bash", "scripts/ensure-debian-packages.sh", *DEBIAN_PACKAGES],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0 and SSHD_BINARY.exists():
            return
        if "lock" not in (result.stderr + result.stdout) or attempt == 11:
            break
        time.sleep(5)
    raise SshdError(f"could not install {' '.join(DEBIAN_PACKAGES)}: {result.stderr.strip()[-2000:]}")


def ensure_user(user: str = TEST_USER, password: str = TEST_PASSWORD) -> Path:
    """Create the Linux test user if absent and (re)set its password; returns its home.

    Re-setting the password every time makes the fixture independent of what an earlier run
    (or a person) did to the account. Two test sessions racing to create it are fine: the loser's
    useradd fails and the account exists afterwards."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        subprocess.run(
            ["useradd", "--create-home", "--shell", "/bin/bash", user],
            capture_output=True,
            check=False,
        )
        try:
            entry = pwd.getpwnam(user)
        except KeyError as exc:
            raise SshdError(f"could not create the test user {user!r} (are we root?)") from exc
    _run(["chpasswd"], stdin_text=f"{user}:{password}\n")
    # A locked or expired account would make sshd refuse the password with no useful message.
    subprocess.run(["usermod", "--unlock", "--expiredate", "", user], capture_output=True)
    home = Path(entry.pw_dir)
    if not home.is_dir():
        home.mkdir(parents=True)
        os.chown(home, entry.pw_uid, entry.pw_gid)
    return home


def _write_config(workdir: Path, host: str, port: int, user: str, penalties: bool) -> Path:
    lines = [
        f"Port {port}",
        f"ListenAddress {host}",
        *(f"HostKey {workdir / f'ssh_host_{kind}_key'}" for kind in HOST_KEY_TYPES),
        f"PidFile {workdir / 'sshd.pid'}",
        f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
        "UsePAM no",
        "PasswordAuthentication yes",
        "PubkeyAuthentication yes",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin no",
        f"AllowUsers {user}",
        "StrictModes no",
        "PrintMotd no",
        "UseDNS no",
        "X11Forwarding no",
        "AllowTcpForwarding no",
        "MaxAuthTries 20",
        # Tests open many short connections, some failing on purpose: no throttling.
        "MaxStartups 200",
        "LogLevel VERBOSE",
        "Subsystem sftp internal-sftp",
    ]
    if penalties:  # OpenSSH >= 9.8 penalises failed logins per source address
        lines.append("PerSourcePenalties no")
    config = workdir / "sshd_config"
    config.write_text("\n".join(lines) + "\n")
    return config


def _wait_for_banner(process: subprocess.Popen[bytes], host: str, port: int) -> bool:
    """True once the port answers with an SSH banner; False if sshd exited first."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=1.0) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def start_sshd(
    base_dir: Path | None = None,
    user: str = TEST_USER,
    password: str = TEST_PASSWORD,
    host: str = "127.0.0.1",
) -> Sshd:
    """Start a private sshd and return it once it accepts connections. Call `stop()` after.

    The work folder is world-traversable (0755) on purpose: sshd reads AuthorizedKeysFile as
    the logged-in user, and pytest's tmp folders are 0700 root. The host keys inside stay 0600.
    """
    if os.geteuid() != 0:
        raise SshdError("the test sshd needs root (it switches users and reads /etc/shadow)")
    ensure_openssh()
    home = ensure_user(user, password)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation folder
    workdir = Path(tempfile.mkdtemp(prefix="cb-sshd-", dir=base_dir))
    workdir.chmod(0o755)
    try:
        host_keys: dict[str, str] = {}
        for kind in HOST_KEY_TYPES:
            key_path = workdir / f"ssh_host_{kind}_key"
            _run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "", "-f", str(key_path)])
            public = key_path.with_suffix(".pub").read_text().split()
            host_keys[kind] = f"{public[0]} {public[1]}"
        (workdir / "authorized_keys").touch(mode=0o644)

        penalties = True
        for _attempt in range(5):
            port = free_port(host)
            config = _write_config(workdir, host, port, user, penalties)
            check = subprocess.run(
                [str(SSHD_BINARY), "-t", "-f", str(config)], capture_output=True, text=True
            )
            if check.returncode != 0 and penalties and "PerSourcePenalties" in check.stderr:
                penalties = False
                config = _write_config(workdir, host, port, user, penalties)
                check = subprocess.run(
                    [str(SSHD_BINARY), "-t", "-f", str(config)], capture_output=True, text=True
                )
            if check.returncode != 0:
                raise SshdError(f"sshd rejected its configuration: {check.stderr.strip()}")
            log = (workdir / "sshd.log").open("ab")
            process = subprocess.Popen(
                [str(SSHD_BINARY), "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            if _wait_for_banner(process, host, port):
                return Sshd(host, port, user, password, home, workdir, process, host_keys)
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=5)
        raise SshdError("sshd did not start: " + (workdir / "sshd.log").read_text(errors="replace")[-2000:])
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


# --- pytest fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sshd_server() -> Iterator[Sshd]:
    """One sshd for the whole session (starting one costs ~0.5 s of key generation)."""
    if os.geteuid() != 0:
        pytest.skip("the SFTP integration tests need root: they create a user and run sshd")
    server = start_sshd()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sftp_folder(sshd_server: Sshd) -> Iterator[Path]:
    """A fresh, empty folder on the server for one test, removed afterwards."""
    folder = sshd_server.make_folder()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
