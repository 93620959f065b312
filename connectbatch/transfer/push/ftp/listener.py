"""The hosted FTP server's listening socket (pyftpdlib's `FTPServer`), made to outlast floods.

* **Running out of descriptors is not the end.** pyftpdlib re-raises any accept() error but
  ECONNABORTED, and its error handler then closes the listener for good: after one burst of
  EMFILE (a flood, or a busy process at a 1024 soft limit) `serve` still claimed to serve FTP
  while every client was turned away (ECONNREFUSED). Now EMFILE, ENFILE, ENOBUFS and ENOMEM pause
  accepting for `ACCEPT_BACKOFF` seconds (the waiting clients stay in the kernel's backlog,
  and the loop does not spin on a socket it cannot accept from) and then accept again, as the
  SFTP accept loop does. One WARNING per burst (failures less than `BURST_GAP` apart) and one
  INFO line when accepting first works again in it: a flood alternates failures with the odd
  success as descriptors come and go, and must not write a line for each.
* **A full server makes room.** pyftpdlib answers `421 Too many connections` to every newcomer
  once `max_cons` sockets are open, so idle connections from enough addresses locked every
  partner out. Now the oldest connection that has not logged in, from any address, is closed
  to make room (`AddressGuard.make_room`); only when every one has logged in is the newcomer
  refused. A PASV of a logged-in session on a full server makes room the same way.

Everything here runs on the server's IO-loop thread.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from typing import Any

from pyftpdlib.servers import FTPServer

from connectbatch.transfer.push.ftp.guard import AddressGuard

log = logging.getLogger("connectbatch.transfer.push.ftp")

# accept() failures that mean "this process (or the system) is short of resources right now",
# not "the listener is broken": wait and try again.
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
ACCEPT_BACKOFF = 0.1  # seconds accepting pauses after such a failure
BURST_GAP = 60.0  # seconds without a failure that end a burst of them
SERVER_FULL = (
    "421 Closed: the server is full and this connection had not logged in; a newer one took its place."
)


class PushFtpServer(FTPServer):  # type: ignore[misc]  # pyftpdlib is untyped
    """pyftpdlib's server whose accept survives running out of descriptors and whose full
    connection table makes room for a newcomer (see the module doc)."""

    guard: AddressGuard
    _paused = False  # accepting paused after a resource error; resumed by a timer
    _starved = 0  # accept() failures of the current burst
    _last_failure = float("-inf")  # monotonic time of the latest
    _recovered = True  # the current burst's recovery was logged (or there is no burst)

    def __init__(self, address: Any, handler: type[Any], guard: AddressGuard, **kwargs: Any) -> None:
        self.guard = guard
        super().__init__(address, handler, **kwargs)

    # ---- out of descriptors

    def handle_accept(self) -> None:
        try:
            sock, addr = self.accept()
        except OSError as error:
            if error.errno not in RESOURCE_ERRNOS:
                raise
            self._starving(error)
            return
        except TypeError:  # pyftpdlib: accept() may return None
            return
        if not self._recovered:
            self._recovered = True
            log.info("FTP server accepting connections again (%d accept() failures)", self._starved)
        if addr is not None:
            self.handle_accepted(sock, addr)

    def _starving(self, error: OSError) -> None:
        """Log the burst's first failure, and stop polling the listener for a moment."""
        now = time.monotonic()
        new_burst = now - self._last_failure >= BURST_GAP
        self._last_failure = now
        if new_burst:
            self._starved, self._recovered = 0, False
            log.warning(
                "FTP server cannot accept connections: %s (errno %s); retrying every %.1f s. "
                "Raise the open-file limit (ulimit -n) if this recurs",
                os.strerror(error.errno or 0), errno.errorcode.get(error.errno or 0, "?"), ACCEPT_BACKOFF,
            )  # fmt: skip
        self._starved += 1
        if self._paused or self._closed:
            return
        self._paused = True
        self.modify_ioloop_events(0)  # no READ events: the backlog waits, the loop does not spin
        self.ioloop.call_later(ACCEPT_BACKOFF, self._resume_accepting, _errback=self.handle_error)

    def _resume_accepting(self) -> None:
        self._paused = False
        if not self._closed:
            self.modify_ioloop_events(self.ioloop.READ)

    # ---- a full server

    def _accept_new_cons(self) -> bool:
        """Room for one more socket? When the table is full, the oldest connection that has
        not logged in makes room (it is told why and closed)."""
        if not self.max_cons or self._map_len() <= self.max_cons:
            return True
        oldest = self.guard.make_room()
        if oldest is None:
            return False
        oldest.close(SERVER_FULL)
        log.info("server full: closed the oldest connection not logged in (from %s)", oldest.address)
        return True
