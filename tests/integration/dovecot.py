"""A real Dovecot IMAP server for the e-mail tests, started on 127.0.0.1 in a private folder.

Why a real server: the e-mail transport's hard parts (SEARCH criteria, BODYSTRUCTURE as a
server really sends it, literals, keywords, MOVE, STARTTLS, implicit TLS, login failures) are
exactly what a fake would get wrong. Dovecot starts in well under a second, so one server per
test module, with a fresh mail user per test, keeps tests isolated and fast.

One instance serves every security mode: `port` speaks plain IMAP and offers STARTTLS,
`ssl_port` speaks implicit TLS; both use a self-signed certificate made here (`cert_file`
doubles as the CA file for verified-TLS tests). Nothing touches the system configuration:
config, passwd-file, mail, base_dir, state_dir and log all live under one temporary folder,
and the server is stopped by its PID.

    with running_dovecot() as server:
        user = server.add_user()
        uid = server.append(user, raw_message_bytes)
"""

from __future__ import annotations

import datetime as dt
import grp
import imaplib
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from helpers.certs import write_self_signed_cert
from helpers.ports import free_port

REPO = Path(__file__).resolve().parents[2]
DEBIAN_PACKAGE = "dovecot-imapd"
START_TIMEOUT = 20.0
USER_POOL = 64


@dataclass(frozen=True)
class MailUser:
    """A mail account on the test server (each test gets its own, so mailboxes never mix)."""

    username: str
    password: str
    address: str


@dataclass
class DovecotServer:
    """A running Dovecot: where it listens and a few helpers that talk to it with plain imaplib
    (deliberately not the code under test, so the tests check the transport against an
    independent view of the mailbox)."""

    root: Path
    process: subprocess.Popen[bytes]
    host: str
    port: int
    ssl_port: int
    cert_file: Path
    passwd_file: Path
    log_file: Path
    _pool: list[MailUser] = field(default_factory=list)
    _users: list[MailUser] = field(default_factory=list)

    def add_user(self, username: str | None = None, password: str | None = None) -> MailUser:
        """A mail account of its own. Accounts are made in advance (`USER_POOL`): Dovecot
        re-reads a changed passwd-file at most once a second, so a line appended now may not
        be seen by a login a moment later. A named or extra account is appended, and we wait
        for that second to pass."""
        if username is None and password is None and self._pool:
            user = self._pool.pop(0)
        else:
            user = MailUser(
                username or f"extra{len(self._users)}-{secrets.token_hex(3)}",
                password or secrets.token_urlsafe(12),
                "",
            )
            user = MailUser(user.username, user.password, f"{user.username}@example.test")
            with self.passwd_file.open("a", encoding="utf-8") as out:
                out.write(_passwd_line(user))
            time.sleep(1.1)
        self._users.append(user)
        return user

    @contextmanager
    def imap(self, user: MailUser) -> Iterator[imaplib.IMAP4]:
        """A logged-in imaplib client (plain port) for setting up and inspecting mailboxes."""
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            if user.username.isascii() and user.password.isascii():
                client.login(user.username, user.password)
            else:  # LOGIN is ASCII-only in imaplib; AUTHENTICATE PLAIN takes UTF-8
                secret = f"\0{user.username}\0{user.password}".encode()
                client.authenticate("PLAIN", lambda _: secret)
            yield client
        finally:
            with suppress(imaplib.IMAP4.error, OSError):
                client.logout()

    def append(
        self,
        user: MailUser,
        raw: bytes,
        folder: str = "INBOX",
        flags: Sequence[str] = (),
        when: dt.datetime | None = None,
    ) -> int:
        """APPEND one message and return its UID (from the APPENDUID response code)."""
        with self.imap(user) as client:
            if folder != "INBOX":
                client.create(_quote(folder))
            moment = imaplib.Time2Internaldate((when or dt.datetime.now(dt.UTC)).astimezone())
            flag_list = f"({' '.join(flags)})" if flags else None
            typ, data = client.append(_quote(folder), flag_list, moment, raw)
            if typ != "OK":
                raise RuntimeError(f"APPEND failed: {data!r}")
            match = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
            if not match:
                raise RuntimeError(f"no APPENDUID in {data!r}")
            return int(match.group(1))

    def uids(self, user: MailUser, folder: str = "INBOX", criteria: str = "ALL") -> list[int]:
        """UIDs in a folder that match a SEARCH criteria ([] when the folder is missing)."""
        with self.imap(user) as client:
            typ, _ = client.select(_quote(folder), readonly=True)
            if typ != "OK":
                return []
            typ, data = client.uid("SEARCH", criteria)
            return [int(x) for x in (data[0] or b"").split()]

    def flags(self, user: MailUser, uid: int, folder: str = "INBOX") -> set[str]:
        """The flags and keywords of one message."""
        with self.imap(user) as client:
            client.select(_quote(folder), readonly=True)
            _, data = client.uid("FETCH", str(uid), "(FLAGS)")
            found: set[str] = set()
            for item in data:
                if isinstance(item, bytes):
                    found.update(f.decode() for f in imaplib.ParseFlags(item))
            return found

    def folders(self, user: MailUser) -> list[str]:
        """Mailbox names as LIST reports them."""
        with self.imap(user) as client:
            _, data = client.list()
            names = []
            for line in data:
                if isinstance(line, bytes):
                    names.append(line.rsplit(b" ", 1)[-1].strip(b'"').decode())
            return names

    def stop(self) -> None:
        """SIGTERM the master by PID (it takes its children down), SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log(self) -> str:
        """Dovecot's log, for failure messages."""
        try:
            return self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


@dataclass
class BytesRead:
    """What our IMAP clients read from the server since the count began (`imap_bytes_read`)."""

    total: int = 0
    largest: int = 0  # the largest single read: a message body comes as one literal


@contextmanager
def imap_bytes_read() -> Iterator[BytesRead]:
    """Count every byte any imaplib client in this process reads from its server while the
    block runs: imaplib reads each response line with `readline` and each literal (a
    downloaded message among them) with `read`, so a message that is downloaded shows up
    here whatever code asked for it. An observable of the client's socket, not of our code."""
    count = BytesRead()
    original_read, original_readline = imaplib.IMAP4.read, imaplib.IMAP4.readline

    def read(self: imaplib.IMAP4, size: int) -> bytes:
        data = original_read(self, size)
        count.total += len(data)
        count.largest = max(count.largest, len(data))
        return data

    def readline(self: imaplib.IMAP4) -> bytes:
        data = original_readline(self)
        count.total += len(data)
        count.largest = max(count.largest, len(data))
        return data

    imaplib.IMAP4.read, imaplib.IMAP4.readline = read, readline  # type: ignore[method-assign]
    try:
        yield count
    finally:
        imaplib.IMAP4.read, imaplib.IMAP4.readline = original_read, original_readline  # type: ignore[method-assign]


def _passwd_line(user: MailUser) -> str:
    return f"{user.username}:{{PLAIN}}{user.password}::::::\n"


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dovecot_binary() -> str:
    """Path to `dovecot`, installing the Debian package through the repo's script if missing
    (the same route `make test` takes with TEST_DEBS)."""
    found = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)
    if found is None:
        subprocess.run(
            ["bash", "scripts/ensure-debian-packages.sh", DEBIAN_PACKAGE],
            cwd=REPO,
            check=False,
        )
        found = shutil.which("dovecot") or (
            "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
        )
    if found is None:
        raise RuntimeError(
            f"Dovecot is not installed and could not be installed: run "
            f"`bash scripts/ensure-debian-packages.sh {DEBIAN_PACKAGE}` as root"
        )
    return found


def _config(root: Path, port: int, ssl_port: int) -> str:
    """dovecot.conf: everything under `root`, passwd-file auth (no PAM), maildir storage.

    As root, Dovecot drops to its own users (`dovecot`, `dovenull`) and delivers as `nobody`
    (it refuses mail access as UID 0). Unprivileged, every service runs as the current user
    and the login chroot is switched off, as Dovecot's docs describe for non-root use.
    """
    if os.geteuid() == 0:
        mail_user = "nobody"
        privileges = ""
        anvil_chroot = ""
    else:
        mail_user = pwd.getpwuid(os.geteuid()).pw_name
        privileges = f"""
default_internal_user = {mail_user}
default_internal_group = {grp.getgrgid(os.getegid()).gr_name}
default_login_user = {mail_user}
service imap-login {{
  chroot =
}}
"""
        anvil_chroot = "chroot ="
    passwd = root / "passwd"
    return f"""
base_dir = {root}/run
state_dir = {root}/state
instance_name = connectbatch-test-{port}
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
shutdown_clients = yes
auth_failure_delay = 0
auth_mechanisms = plain login
disable_plaintext_auth = no
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
mail_uid = {mail_user}
mail_gid = {pwd.getpwnam(mail_user).pw_gid}
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {passwd}
  default_fields = home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {ssl_port}
    ssl = yes
  }}
}}
# A failed login (the wrong-password test) would otherwise slow every later login from
# 127.0.0.1 by 2-15 s: switch the brute-force penalty off.
service anvil {{
  {anvil_chroot}
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{privileges}
"""


def _greeting(host: str, port: int, use_ssl: bool) -> bool:
    """True once the listener answers with an IMAP greeting."""
    try:
        client: imaplib.IMAP4
        if use_ssl:
            import ssl

            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            client = imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=2)
        else:
            client = imaplib.IMAP4(host, port, timeout=2)
    except (OSError, imaplib.IMAP4.error):
        return False
    with suppress(OSError):
        client.shutdown()
    return True


@contextmanager
def running_dovecot() -> Iterator[DovecotServer]:
    """Start Dovecot in the foreground (`dovecot -F -c conf`) on two free ports, yield it, and
    stop it afterwards. A short folder from mkdtemp (not pytest's tmp_path) keeps socket paths
    under the 108-byte limit of unix sockets."""
    binary = dovecot_binary()
    root = Path(tempfile.mkdtemp(prefix="cb-dovecot-"))
    try:
        # Dovecot's own users must reach the passwd-file and the mail folder.
        root.chmod(0o755)
        write_self_signed_cert(root / "cert.pem", root / "key.pem")
        passwd = root / "passwd"
        pool = [
            MailUser(f"user{i}", secrets.token_urlsafe(12), f"user{i}@example.test")
            for i in range(1, USER_POOL + 1)
        ]
        passwd.write_text("".join(_passwd_line(u) for u in pool), encoding="utf-8")
        passwd.chmod(0o644)
        mail_owner = pwd.getpwnam("nobody") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
        for sub in ("mail", "home"):
            (root / sub).mkdir()
            os.chown(root / sub, mail_owner.pw_uid, mail_owner.pw_gid)
        port, ssl_port = free_port(), free_port()
        while ssl_port == port:
            ssl_port = free_port()
        conf = root / "dovecot.conf"
        conf.write_text(_config(root, port, ssl_port), encoding="utf-8")
        stderr = (root / "stderr.log").open("wb")
        process = subprocess.Popen(
            [binary, "-F", "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
        )
        server = DovecotServer(
            root=root,
            process=process,
            host="127.0.0.1",
            port=port,
            ssl_port=ssl_port,
            cert_file=root / "cert.pem",
            passwd_file=passwd,
            log_file=root / "dovecot.log",
            _pool=pool,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not (_greeting("127.0.0.1", port, False) and _greeting("127.0.0.1", ssl_port, True)):
                if process.poll() is not None or time.monotonic() > deadline:
                    output = (root / "stderr.log").read_text(errors="replace")
                    raise RuntimeError(
                        f"Dovecot did not start (exit code {process.poll()}):\n{output}\n{server.log()}"
                    )
                time.sleep(0.05)
            yield server
        finally:
            server.stop()
            stderr.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
