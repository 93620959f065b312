"""The FTP data channel: the per-account size limit on uploads, and the final reply held back
until the upload was handed to the gateway.

`LimitedDTP` refuses the chunk that would take a file past `max_file_bytes`, closes the
transfer with 552 and lets the session delete the partial file. The 226 reply is sent only
after the control channel's completion hooks ran, so a client that saw it (and a test that then
calls `Gateway.wait()`) can rely on the ingest having been started.
"""

from __future__ import annotations

import logging
from typing import Any

from pyftpdlib.handlers import DTPHandler

log = logging.getLogger("connectbatch.transfer.push.ftp")


class CappedFile:
    """The file an upload is written to, refusing to grow past the account's limit.

    A refused write leaves the file as it was and sets `exceeded`; the data channel then
    aborts the transfer. Everything else the data channel uses is passed through.
    """

    def __init__(self, raw: Any, limit: int) -> None:
        self.raw = raw
        self.limit = limit
        self.exceeded = False
        self._position = int(raw.tell())  # APPE and REST start past 0

    @property
    def name(self) -> str:
        return str(self.raw.name)

    @property
    def closed(self) -> bool:
        return bool(self.raw.closed)

    def write(self, data: bytes) -> int:
        if self.exceeded or self._position + len(data) > self.limit:
            self.exceeded = True
            return 0
        written = int(self.raw.write(data))
        self._position += written
        return written

    def fileno(self) -> int:
        return int(self.raw.fileno())

    def close(self) -> None:
        self.raw.close()


class LimitedDTP(DTPHandler):  # type: ignore[misc]
    """pyftpdlib's data channel with the per-account size limit, and with the final reply
    deferred until the control channel's completion hooks have run (see the module doc)."""

    file_obj: Any
    _resp: tuple[Any, ...]

    def enable_receiving(self, type: str, cmd: str) -> None:
        account = getattr(self.cmd_channel, "account", None)
        limit = account.max_file_bytes if account is not None else 0
        self.file_obj = CappedFile(self.file_obj, limit)
        super().enable_receiving(type, cmd)

    def handle_read(self) -> None:
        super().handle_read()
        capped = self.file_obj
        if isinstance(capped, CappedFile) and capped.exceeded and not self._closed:
            self.transfer_finished = False
            self._resp = (
                f"552 Upload aborted: the file is larger than the limit of {capped.limit} bytes.",
                log.warning,
            )
            self.close()

    # pyftpdlib binds the event to DTPHandler.handle_read at class creation: rebind it.
    handle_read_event = handle_read

    def close(self) -> None:
        if self._closed:
            return
        channel = self.cmd_channel
        if channel._quit_pending:  # the client is leaving: keep pyftpdlib's order
            super().close()
            return
        reply, self._resp = self._resp, ()
        super().close()  # closes the file, runs on_file_received / on_incomplete_file_received
        if not channel._closed:
            channel.reply_after_upload(reply)  # at once, or once the upload is known complete
