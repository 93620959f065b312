"""The listening hosted SFTP server: accepts clients, gives each its own thread and a tuned
paramiko transport, enforces the pre-auth timeout and the connection slots per address and in
total (`guard`) and the sessions per login (`push.sessions`, given back in `_serve`'s `finally`,
whichever way a session ends), and stops cleanly.

Tuning (measured in bench/bench_sftp_push.py, see the package docstring): TCP_NODELAY (paramiko
never sets it; without it small replies wait for delayed ACKs), a large channel window, and a
256 KiB maximum packet so a client's 32 KiB write fits in one SSH packet (paramiko's default
maximum is exactly 32 KiB, a few bytes short of a write request).

Algorithms: paramiko also offers CBC ciphers (aes*-cbc, 3des-cbc: padding-oracle and
plaintext-recovery attacks) and MD5 and truncated (-96) MACs; `ssh -o Ciphers=3des-cbc` and
`-o MACs=hmac-md5` negotiated them. They are turned off (`WEAK_ALGORITHMS`); what current
OpenSSH, WinSCP and paramiko clients pick stays: aes-ctr and aes-gcm (paramiko has no
chacha20-poly1305), hmac-sha2-256/512 and their -etm forms, and hmac-sha1 for older clients.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from functools import partial
from pathlib import Path

import paramiko

from connectbatch.settings import MAX_SESSIONS_PER_LOGIN
from connectbatch.transfer import paramiko_log
from connectbatch.transfer.pull.sftp import fingerprint
from connectbatch.transfer.push.sessions import LoginSessions, too_many_sessions
from connectbatch.transfer.push.sftp.channel import SftpChannel
from connectbatch.transfer.push.sftp.filesystem import MAX_OPEN_FILES_PER_LOGIN, ConfinedFs
from connectbatch.transfer.push.sftp.guard import FailedLogins, LogLimiter, OpenFiles, Slot, Slots
from connectbatch.transfer.push.sftp.host_key import load_or_create_host_key
from connectbatch.transfer.push.sftp.login import (
    DISCONNECT_BY_APPLICATION,
    MAX_AUTH_FAILURES,
    AccountGateway,
    Login,
)

log = logging.getLogger("connectbatch.transfer.push.sftp")
# paramiko logs every client that hangs up abruptly ("Socket exception: Connection reset by
# peer"), every failed handshake (port scanners, health checks) with a traceback, at ERROR.
# For a server those are one client's business, which our own log already records, not errors
# of ours: its log goes under ours, at DEBUG (transfer/paramiko_log.py).
PARAMIKO_LOG = paramiko_log.quiet(f"{log.name}.paramiko")

WINDOW_SIZE = 16 * 1024 * 1024  # far above what a client keeps in flight: it never waits for us
MAX_PACKET_SIZE = 256 * 1024  # a 32 KiB write request (+ header) fits in one SSH packet
KEEPALIVE_SECONDS = 30
MAX_SESSIONS = 128
MAX_CONNECTIONS_PER_ADDRESS = 8
PREAUTH_TIMEOUT = 30.0  # banner, key exchange and login must be done within this
# CONNECTBATCH_PREAUTH_TIMEOUT=0 is no limit (as on the FTP server); taken as 0 s, paramiko's
# banner and handshake waits and the login deadline refused every login. The most the
# setting allows stands for it (paramiko needs a number).
NO_PREAUTH_LIMIT = 86400.0
# paramiko's `disabled_algorithms`: removed from what the server offers (see the module doc).
WEAK_ALGORITHMS: dict[str, list[str]] = {
    "ciphers": ["aes128-cbc", "aes192-cbc", "aes256-cbc", "3des-cbc", "blowfish-cbc"],
    "macs": ["hmac-md5", "hmac-md5-96", "hmac-sha1-96"],
}


class HostedSftpServer:
    """A listening SFTP server: `start()`, `port`, `host_key_fingerprint`, `stop()`.

    `port=0` picks a free port (tests); `.port` says which one after `start()`."""

    def __init__(
        self,
        gateway: AccountGateway,
        host: str,
        port: int,
        host_key_path: Path,
        *,
        max_sessions: int = MAX_SESSIONS,
        max_connections_per_address: int = MAX_CONNECTIONS_PER_ADDRESS,
        preauth_timeout: float = PREAUTH_TIMEOUT,
        failed_logins: FailedLogins | None = None,
        max_sessions_per_login: int = MAX_SESSIONS_PER_LOGIN,
        max_open_files_per_login: int = MAX_OPEN_FILES_PER_LOGIN,
    ) -> None:
        self.gateway = gateway
        self.host = host
        self.port = port
        self.host_key_path = Path(host_key_path)
        self.max_sessions = max_sessions
        self.host_key: paramiko.PKey | None = None
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._sessions: dict[threading.Thread, paramiko.Transport | None] = {}
        self._channels: list[SftpChannel] = []
        self.preauth_timeout = preauth_timeout if preauth_timeout > 0 else NO_PREAUTH_LIMIT
        self.slots = Slots(per_address=max(1, max_connections_per_address), total=max(1, max_sessions))
        self.failed_logins = failed_logins or FailedLogins()
        self.login_sessions = LoginSessions(max(1, max_sessions_per_login))
        # Files open at once per login, across its sessions and channels: each is one of this
        # process's descriptors, which every other partner and the database need too.
        self.open_files = OpenFiles(max(1, max_open_files_per_login))
        self.quiet = LogLimiter(log)

    # --- host key --------------------------------------------------------------------------------

    @property
    def host_key_line(self) -> str:
        """The public key as "<type> <base64>" (what a partner pins, or puts in known_hosts)."""
        key = self._key()
        return f"{key.get_name()} {key.get_base64()}"

    @property
    def host_key_fingerprint(self) -> str:
        """SHA256 fingerprint as OpenSSH prints it, for partners to compare on first login."""
        return fingerprint(self._key().asbytes())

    def _key(self) -> paramiko.PKey:
        if self.host_key is None:
            self.host_key = load_or_create_host_key(self.host_key_path)
        return self.host_key

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> HostedSftpServer:
        """Load (or create) the host key, listen, and accept clients in a daemon thread."""
        if self._listener is not None:
            return self
        self._key()
        family, kind, proto, _name, address = socket.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listener = socket.socket(family, kind, proto)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(address)
            listener.listen(128)
            listener.settimeout(0.25)  # the accept loop checks for stop() this often
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self.port = int(listener.getsockname()[1])
        self._stopping.clear()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"sftp-accept-{self.port}", daemon=True
        )
        self._accept_thread.start()
        log.info(
            "hosted SFTP server listening on %s:%d (host key %s)",
            self.host,
            self.port,
            self.host_key_fingerprint,
        )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, close every session, and wait for their threads."""
        self._stopping.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout)
            self._accept_thread = None
        with self._lock:
            sessions = list(self._sessions.items())
            channels = list(self._channels)
        for _thread, transport in sessions:
            if transport is not None:
                with contextlib.suppress(Exception):
                    transport.close()
        deadline = time.monotonic() + timeout
        for thread, _transport in sessions:
            thread.join(max(0.0, deadline - time.monotonic()))
        for channel in channels:
            channel.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._channels = [c for c in self._channels if c.is_alive()]

    def __enter__(self) -> HostedSftpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def sessions(self) -> int:
        """Connected clients right now."""
        with self._lock:
            return len(self._sessions)

    def track_channel(self, channel: SftpChannel) -> None:
        with self._lock:
            self._channels = [c for c in self._channels if c.is_alive()]
            self._channels.append(channel)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            self._close_late()
            listener = self._listener
            if listener is None:
                return
            try:
                client, address = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                self.quiet.log("accept", logging.ERROR, "accepting a connection failed", exc_info=True)
                time.sleep(0.1)  # e.g. out of file descriptors: do not spin
                continue
            peer = f"{address[0]}:{address[1]}"
            slot, displaced = self.slots.take(str(address[0]), partial(_hang_up, client))
            for old in displaced:
                old.close()
            if displaced:
                self.quiet.log(
                    "displaced",
                    logging.INFO,
                    "closed %d idle connection(s) from %s to make room for %s",
                    len(displaced),
                    displaced[0].address,
                    peer,
                )
            if slot is None:
                self.quiet.log(
                    "refused", logging.WARNING, "refused %s: every slot holds a logged-in session", peer
                )
                _hang_up(client)
                client.close()
                continue
            thread = threading.Thread(
                target=self._serve, args=(client, peer, slot), name=f"sftp-session-{peer}", daemon=True
            )
            with self._lock:
                self._sessions[thread] = None
            thread.start()

    def _close_late(self) -> None:
        """Close connections that have not logged in within the pre-auth timeout."""
        late = self.slots.expired(self.preauth_timeout)
        for slot in late:
            slot.close()
        if late:
            self.quiet.log(
                "preauth-timeout",
                logging.INFO,
                "closed %d connection(s) not logged in within %.0f s (e.g. %s)",
                len(late),
                self.preauth_timeout,
                late[0].address,
            )

    def _serve(self, client: socket.socket, peer: str, slot: Slot) -> None:
        """One client, start to end. Nothing it does may escape this function."""
        me = threading.current_thread()
        transport: paramiko.Transport | None = None
        login: Login | None = None
        try:
            client.settimeout(None)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            transport = paramiko.Transport(
                client,
                default_window_size=WINDOW_SIZE,
                default_max_packet_size=MAX_PACKET_SIZE,
                disabled_algorithms=WEAK_ALGORITHMS,
            )
            transport.set_log_channel(PARAMIKO_LOG)
            transport.banner_timeout = self.preauth_timeout
            transport.handshake_timeout = self.preauth_timeout
            transport.auth_timeout = self.preauth_timeout
            slot.logged_in = transport.is_authenticated
            transport.add_server_key(self._key())
            transport.set_subsystem_handler("sftp", SftpChannel, ConfinedFs)
            with self._lock:
                self._sessions[me] = transport
            if self._stopping.is_set():
                return
            login = Login(self, peer, transport)
            try:
                transport.start_server(server=login)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                self.quiet.log("handshake", logging.INFO, "SSH handshake with %s failed: %s", peer, exc)
                return
            transport.set_keepalive(KEEPALIVE_SECONDS)
            deadline = slot.opened + self.preauth_timeout
            while transport.is_active() and not self._stopping.is_set():
                if login.locked_out.is_set():
                    self.quiet.log(
                        "locked-out",
                        logging.WARNING,
                        "closing %s after %d failed logins",
                        peer,
                        MAX_AUTH_FAILURES,
                    )
                    time.sleep(0.05)  # let the last failure reply go out first
                    break
                if login.revoked:
                    time.sleep(0.05)  # let the refused request's reply go out first
                    login.disconnect(login.revoked, DISCONNECT_BY_APPLICATION)
                    self.quiet.log("revoked", logging.WARNING, "closed %s: %s", peer, login.revoked)
                    break
                if login.over_limit.is_set() or (login.account is not None and not login.admitted()):
                    time.sleep(0.05)  # let the refused login's reply and banner go out first
                    login.disconnect(too_many_sessions(self.login_sessions.per_login))
                    break
                if login.account is None and time.monotonic() > deadline:
                    self.quiet.log(
                        "preauth-timeout",
                        logging.INFO,
                        "closing %s: no login within %.0f s",
                        peer,
                        self.preauth_timeout,
                    )
                    break
                login.ending.wait(0.25)
        except Exception:
            self.quiet.log("session", logging.ERROR, "SFTP session with %s failed", peer, exc_info=True)
        finally:
            if transport is not None:
                with contextlib.suppress(Exception):
                    transport.close()
            with contextlib.suppress(OSError):
                client.close()
            if login is not None:
                login.release()
            self.slots.release(slot)
            with self._lock:
                self._sessions.pop(me, None)


def _hang_up(client: socket.socket) -> None:
    """Wake whoever is reading this socket (paramiko's thread) with an EOF; the session's
    own thread then closes it."""
    with contextlib.suppress(OSError):
        client.shutdown(socket.SHUT_RDWR)
