"""Whose is a connection to a session's passive data port? (pyftpdlib's `PassiveDTP`.)

pyftpdlib took the first connection to the port from the control connection's IP address as
the session's data connection and stopped listening. So another socket from that address (a
neighbour behind the same NAT, anything on the partner's host) that reached the port first,
without any login, had its bytes stored in the partner's STOR; and a connection from any
other address aborted the partner's pending transfer (`425 Rejected data connection from
foreign address`).

Now, under TLS (PROT P), a connection to the port is only a *candidate* until its TLS
handshake ends, and the listener keeps listening meanwhile; the first candidate that proves
to be the session's becomes its data connection, and the others are closed:

* **A resumption of the control connection's TLS session is the session's.** Only the
  client that logged in holds that session (its master secret; in TLS 1.2 a resumed session
  keeps it, so equal master keys prove it). curl, lftp, FileZilla, WinSCP and our own FTPS
  client resume; vsftpd's `require_ssl_reuse` relies on the same.
* **A new TLS session is accepted only once the transfer command has come** (the client
  connected, sent STOR/RETR/LIST..., got 150, and then negotiated TLS, which is the order
  of Python's ftplib, which never resumes) and only in a session that has never resumed (a
  client that resumed once always does). A stray socket that does its handshake as soon as it
  connects is closed, and the partner's own connection is still taken.
  With `require_tls_reuse` even that is refused, saying why (`REUSE_REQUIRED`).
* **A foreign address is ignored**: closed and logged; the listener keeps waiting for the
  right client until its own timeout.

Clear-text data connections (allowed only when TLS is not required) carry nothing that could
tie them to the session: they keep pyftpdlib's first-come behaviour.

Everything here runs on the server's IO-loop thread.
"""

from __future__ import annotations

import enum
import hmac
import logging
from typing import Any

from pyftpdlib.handlers.ftp.dispatchers import PassiveDTP

log = logging.getLogger("connectbatch.transfer.push.ftp")

REUSE_REQUIRED = "522 Data connection not accepted: it must reuse the TLS session of the control connection."
EARLY_CLOSED = (
    "425 No data connection: the one that came, before the transfer command, did not reuse the TLS "
    "session of the control connection. Turn TLS session reuse on in your FTP client."
)
MAX_CANDIDATES = 4  # connections waiting for their TLS handshake on one passive port


class Verdict(enum.Enum):
    """What a finished TLS handshake on the passive port makes of its connection."""

    RESUMED = "resumed"  # the control connection's own TLS session: the session's
    ACCEPTED = "accepted"  # a new TLS session after the transfer command (ftplib's way)
    EARLY = "early"  # a new TLS session before any transfer command: not the session's
    REFUSED = "refused"  # a new TLS session where only a resumption is accepted


def _master_key(connection: Any) -> bytes | None:
    try:
        key = connection.master_key()
    except Exception:  # not a TLS connection, or no session yet
        return None
    return bytes(key) if key else None


def judge(control: Any, data_socket: Any) -> Verdict:
    """The verdict on a data connection (`data_socket`, TLS handshake done) for the session
    `control` (the control channel)."""
    ours, theirs = _master_key(control.socket), _master_key(data_socket)
    if ours is not None and theirs is not None and hmac.compare_digest(ours, theirs):
        control.tls_resumed = True  # from now on only resumptions are the session's
        return Verdict.RESUMED
    if control.require_tls_reuse or control.tls_resumed:
        return Verdict.REFUSED if transfer_pending(control) else Verdict.EARLY
    return Verdict.ACCEPTED if transfer_pending(control) else Verdict.EARLY


def transfer_pending(control: Any) -> bool:
    """Has a transfer command come that waits for its data connection?"""
    return control._in_dtp_queue is not None or control._out_dtp_queue is not None


def drop_pending_transfer(control: Any) -> None:
    """The waiting transfer will not get a data connection: its file let go of (an upload's
    is a broken one, as after a failed data connection) and the listener closed."""
    incoming, outgoing = control._in_dtp_queue, control._out_dtp_queue
    control._in_dtp_queue = control._out_dtp_queue = None
    control._shutdown_connecting_dtp()
    if incoming is not None:
        file = incoming[0]
        file.close()
        control.on_incomplete_file_received(file.name)
    if outgoing is not None and outgoing[2] is not None:
        outgoing[2].close()


class BoundPassiveDTP(PassiveDTP):  # type: ignore[misc]  # pyftpdlib is untyped
    """A passive data port that keeps listening until the session's own data connection
    arrives (see the module doc)."""

    def __init__(self, cmd_channel: Any, extmode: bool = False) -> None:
        self.candidates: list[Any] = []  # accepted, TLS handshake not finished yet
        self.closed_early = False  # one came before the transfer command, in a TLS session of its own
        super().__init__(cmd_channel, extmode)

    def handle_timeout(self) -> None:
        """No data connection of the session came. When one came before the transfer
        command with a TLS session of its own (curl --no-sessionid), the reply says so and
        what to change: pyftpdlib's said only "421 Passive data channel timed out" (a push
        audit), which no partner can act on."""
        control = self.cmd_channel
        if self.closed_early and control.connected:
            control.respond(EARLY_CLOSED, logfun=log.info)
            self.close()
            return
        super().handle_timeout()

    def handle_accepted(self, sock: Any, addr: Any) -> None:
        control = self.cmd_channel
        if not control.connected:
            sock.close()
            self.close()
            return
        if addr[0] != control.remote_ip:
            sock.close()
            log.warning(
                "ignored a data connection from foreign address %s to the passive port of %s; "
                "still waiting for the client", addr[0], control.remote_ip,
            )  # fmt: skip
            return
        if not getattr(control, "_prot", False):  # clear-text data: pyftpdlib's first come
            super().handle_accepted(sock, addr)
            return
        handler = control.dtp_handler(sock, control)
        if not handler.connected:
            return
        handler.passive = self
        self.candidates.append(handler)
        while len(self.candidates) > MAX_CANDIDATES:  # a flood of handshakes never finished
            self.candidates.pop(0).discard()

    def handshake_done(self, handler: Any) -> None:
        """A candidate's TLS handshake ended: it becomes the data connection, waits no more
        (closed), or -- refused after the transfer command -- ends that transfer with 522."""
        control = self.cmd_channel
        verdict = judge(control, handler.socket)
        if verdict in (Verdict.RESUMED, Verdict.ACCEPTED):
            self.candidates.remove(handler)
            handler.passive = None
            control.data_channel = handler
            control._on_dtp_connection()  # closes this listener and the other candidates
            return
        self.candidates.remove(handler)
        handler.discard()
        self.closed_early = self.closed_early or verdict is Verdict.EARLY
        log.info(
            "closed a data connection from %s that did not reuse the control connection's TLS "
            "session (%s)", control.remote_ip, verdict.value,
        )  # fmt: skip
        if verdict is Verdict.REFUSED:
            control.respond(REUSE_REQUIRED, logfun=log.info)
            drop_pending_transfer(control)

    def forget(self, handler: Any) -> None:
        """A candidate went away before its handshake ended."""
        if handler in self.candidates:
            self.candidates.remove(handler)

    def close(self) -> None:
        candidates, self.candidates = self.candidates, []
        for handler in candidates:
            handler.discard()
        super().close()
