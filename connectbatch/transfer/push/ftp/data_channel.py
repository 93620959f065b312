"""The FTP data channel: the per-account size limit and the push folder's quota on uploads,
and the final reply held back until the upload was handed to the gateway.

`LimitedDTP` refuses the chunk that would take a file past `max_file_bytes`, or its push folder
past its quota (`push.quota`: each chunk reserves its bytes first), closes the transfer with
552 and lets the session delete the partial file. The 226 reply is sent only
after the control channel's completion hooks ran, so a client that saw it (and a test that then
calls `Gateway.wait()`) can rely on the ingest having been started.

For STOR the end of the data connection is the end of the file, but only an orderly end (the
client's FIN, or its TLS close_notify): a *reset* connection is a broken upload (426, not
ingested, the partial file kept for a resume), since the kernel throws away whatever the
client sent that we had not read yet. pyftpdlib takes a reset for a normal end; TLS 1.3
clients that never read the server's session tickets (lftp, curl) reset every data
connection they close, and their uploads were loaded cut short at a 16 KiB record boundary.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import sys
from typing import Any

from pyftpdlib.handlers import DTPHandler
from pyftpdlib.ioloop import AsyncChat

from connectbatch.transfer.push.quota import Upload, over_quota

log = logging.getLogger("connectbatch.transfer.push.ftp")

_TCP_CLOSE = 7  # Linux's tcpi_state of a connection the peer reset (FIN received: 8, CLOSE_WAIT)


def _tcp_state(sock: Any) -> int | None:
    """The kernel's TCP state of a socket (Linux; None elsewhere or when unknown). A TLS
    socket (pyOpenSSL's Connection) passes getsockopt through to its TCP socket."""
    option = getattr(socket, "TCP_INFO", None)
    if option is None:
        return None
    try:
        return int(sock.getsockopt(socket.IPPROTO_TCP, option, 8)[0])
    except (OSError, AttributeError, ValueError, IndexError):
        return None


def peer_gone(sock: Any) -> bool:
    """Has the client closed or reset this connection? Peeks at the socket without reading
    (works under TLS too: it looks below the TLS layer)."""
    try:
        probe = socket.socket(fileno=os.dup(sock.fileno()))
    except (OSError, ValueError):
        return True
    try:
        return probe.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False  # nothing to read: connected and waiting for our reply
    except OSError:
        return True
    finally:
        probe.close()


class CappedFile:
    """The file an upload is written to, refusing to grow past the account's limit or its
    push folder past the quota (`upload`: the folder's count of this file).

    A refused write leaves the file as it was and sets `refusal` (the 552 reply; `exceeded`);
    the data channel then aborts the transfer. Everything else the data channel uses is
    passed through.
    """

    def __init__(self, raw: Any, limit: int, upload: Upload | None = None) -> None:
        self.raw = raw
        self.limit = limit
        self.upload = upload
        self.refusal = ""
        self.over_quota = False
        self._position = int(raw.tell())  # APPE and REST start past 0

    @property
    def exceeded(self) -> bool:
        """A write was refused: the partial file is to be removed."""
        return bool(self.refusal)

    @property
    def name(self) -> str:
        return str(self.raw.name)

    @property
    def closed(self) -> bool:
        return bool(self.raw.closed)

    def write(self, data: bytes) -> int:
        end = self._position + len(data)
        if self.refusal:
            return 0
        if end > self.limit:
            self.refusal = f"552 Upload aborted: the file is larger than the limit of {self.limit} bytes."
            return 0
        if self.upload is not None and not self.upload.extend(end):
            self.over_quota = True
            self.refusal = f"552 Upload aborted: {over_quota(self.upload.limit)}"
            return 0
        try:
            written = int(self.raw.write(data))
        except OSError as exc:  # our disk full (ENOSPC, EDQUOT), a failing disk: our side
            self.refusal = write_failed(exc)
            return 0
        self._position += written
        return written

    def flush(self) -> None:
        """Write what is buffered before the transfer is called complete: a full disk refuses
        the upload (`refusal`) rather than losing its end in the close."""
        if not self.refusal:
            try:
                self.raw.flush()
            except OSError as exc:
                self.refusal = write_failed(exc)

    def fileno(self) -> int:
        return int(self.raw.fileno())

    def close(self) -> None:
        try:
            self.raw.close()
        except OSError as exc:  # what stayed buffered could not be written: refused
            self.refusal = self.refusal or write_failed(exc)
        upload, self.upload = self.upload, None
        if upload is not None:  # a refused upload's partial file is removed by the session
            upload.finish(kept=not self.exceeded)


def write_failed(exc: OSError) -> str:
    """The reply to an upload our side could not write (452: insufficient storage, RFC 959)."""
    full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
    why = "our server's disk is full" if full else f"our server could not write it ({exc.strerror or exc})"
    return f"452 Upload aborted: {why}; nothing was kept or loaded. Send the file again later."


class LimitedDTP(DTPHandler):  # type: ignore[misc]
    """pyftpdlib's data channel with the per-account size limit, and with the final reply
    deferred until the control channel's completion hooks have run (see the module doc)."""

    file_obj: Any
    _resp: tuple[Any, ...]
    _idler: Any
    # The passive port this connection reached, while it is only a candidate for the session's
    # data connection (its TLS handshake not judged yet: `passive`); None once it is the one.
    passive: Any = None

    def enable_receiving(self, type: str, cmd: str) -> None:
        account = getattr(self.cmd_channel, "account", None)
        limit = account.max_file_bytes if account is not None else 0
        upload = None
        if account is not None:  # counted in the push folder from now on
            quota = self.cmd_channel.context.gateway.quota
            upload = quota.start(account.home, account.push_quota_bytes, self.file_obj.fileno())
        self.file_obj = CappedFile(self.file_obj, limit, upload)
        super().enable_receiving(type, cmd)

    def handle_read(self) -> None:
        super().handle_read()
        capped = self.file_obj
        if isinstance(capped, CappedFile) and capped.exceeded and not self._closed:
            self.transfer_finished = False
            self._resp = (capped.refusal, log.warning)
            self.close()

    # pyftpdlib binds the event to DTPHandler.handle_read at class creation: rebind it.
    handle_read_event = handle_read

    def handle_close(self) -> None:
        """The client's side of the data connection ended. pyftpdlib calls this from inside
        its `except` for a failed recv (a reset, a timeout...) as well as after an orderly end;
        an upload that ended the first way is incomplete, whatever it says later."""
        if self.receive and not self._closed and self._cut_off(sys.exc_info()[1]):
            self.transfer_finished = False
            self._resp = (
                "426 Upload broken off: the data connection was reset before the end of the "
                "file; nothing was loaded. Send the file again (or resume it).",
                log.warning,
            )
            self.close()
            return
        super().handle_close()

    def _cut_off(self, error: BaseException | None) -> bool:
        """Whether the data connection ended other than in order. A TLS close_notify
        (pyOpenSSL's ZeroReturnError) is orderly; otherwise the kernel knows: a connection
        the client reset is CLOSE, one it ended with a FIN (every byte it sent arrived, as
        in clear-text FTP) is CLOSE_WAIT. pyOpenSSL often reports a reset as "Unexpected
        EOF" (its errno lost), so the error alone cannot tell them apart."""
        if type(error).__name__ == "ZeroReturnError":
            return False
        state = _tcp_state(self.socket)
        if state is not None:
            return state == _TCP_CLOSE
        return error is not None and not (len(error.args) == 2 and error.args[1] == "Unexpected EOF")

    def discard(self) -> None:
        """Close a candidate that never became the session's data connection, leaving the
        session alone: no reply, no transfer ended, no idle timer restarted."""
        self.passive = None
        idler, self._idler = self._idler, None
        if idler is not None and not idler.cancelled:
            idler.cancel()
        AsyncChat.close(self)

    def close(self) -> None:
        if self._closed:
            return
        if self.passive is not None:  # a candidate gone before its handshake was judged
            self.passive.forget(self)
            self.discard()
            return
        capped = self.file_obj if self.receive else None
        if isinstance(capped, CappedFile) and self.transfer_finished:
            capped.flush()  # a full disk now refuses the upload, not a 226 for a cut file
            if capped.exceeded:
                self.transfer_finished = False
                self._resp = (capped.refusal, log.warning)
        channel = self.cmd_channel
        if channel._quit_pending:  # the client is leaving: keep pyftpdlib's order
            super().close()
            return
        reply, self._resp = self._resp, ()
        super().close()  # closes the file, runs on_file_received / on_incomplete_file_received
        if not channel._closed:
            channel.reply_after_upload(reply)  # at once, or once the upload is known complete
