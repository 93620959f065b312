"""Active-mode data connections taken from the partner's server only.

In active mode (`FtpSpec.passive` off) the server connects back to a port we listen on.
ftplib listens on every interface and takes the first connection that arrives, from anyone:
whoever reaches our host and finds the port first (a port scan takes a moment) could hand us
their own listing or file, loaded as the partner's, or stall the pull. Here a data connection
is taken only from the address of the server we log in to (the control connection's peer);
any other is closed and logged, and we keep waiting, within the step's timeout, for the
server's own. Passive mode is ftplib's, which already ignores the address in a PASV reply.
"""

from __future__ import annotations

import ftplib
import logging
import socket
import time

from connectbatch.transfer.pull.ftp.reading import BoundedReplies

log = logging.getLogger("connectbatch.transfer.pull.ftp")


def data_connection(
    ftp: ftplib.FTP, cmd: str, rest: int | str | None = None
) -> tuple[socket.socket, int | None]:
    """`ftplib.FTP.ntransfercmd`, taking an active-mode connection from the server only."""
    if ftp.passiveserver:
        return ftplib.FTP.ntransfercmd(ftp, cmd, rest)
    assert ftp.sock is not None  # logged in
    server = ftp.sock.getpeername()[0]
    with ftp.makeport() as listener:
        if rest is not None:
            ftp.sendcmd(f"REST {rest}")
        reply = ftp.sendcmd(cmd)
        if reply[0] == "2":  # a 200 before the 150, as ftplib tolerates
            reply = ftp.getresp()
        if reply[0] != "1":
            raise ftplib.error_reply(reply)
        conn = _accept_from(listener, server, ftp.timeout)
    size = ftplib.parse150(reply) if reply[:3] == "150" else None
    return conn, size


def _accept_from(listener: socket.socket, server: str, timeout: float | None) -> socket.socket:
    """The first connection from `server`; others are closed. Waits `timeout` in all, then
    raises TimeoutError (read by `transfer.errors` as the server not answering)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            listener.settimeout(left)
        conn, peer = listener.accept()
        if peer[0] == server:
            conn.settimeout(timeout)
            return conn
        log.warning("refused an FTP data connection from %s: the server is %s", peer[0], server)
        conn.close()


class PlainFTP(BoundedReplies):
    """ftplib.FTP whose active-mode data connections come from the server only, and whose
    replies are bounded (`reading`)."""

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, int | None]:
        return data_connection(self, cmd, rest)
