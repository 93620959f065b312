"""Partner servers that hold a pull, on 127.0.0.1: one that accepts and never speaks
(`SilentPeer`), and a relay to a real server that, after a while, passes the server's bytes on
slowly forever (`TrickleProxy`: no read ever waits long enough for a timeout, and the pull
never ends on its own)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class SilentPeer:
    """Accepts TCP connections and never says a word; `accepted` counts them."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self._held: list[socket.socket] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="silent-peer", daemon=True)
        self._thread.start()

    @property
    def accepted(self) -> int:
        return len(self._held)

    def _serve(self) -> None:
        while not self._done.is_set():
            try:
                self._held.append(self._listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    def close(self) -> None:
        self._done.set()
        self._thread.join(5)
        for sock in self._held:
            sock.close()
        self._listener.close()


class TrickleProxy:
    """A relay to `upstream` (a real server): the client's bytes go through as they come;
    the server's go through as they come for the first `fast` bytes of a connection, then
    `chunk` bytes every `every` seconds while `throttled` (set it False to let a later pull
    through at full speed)."""

    def __init__(self, upstream: tuple[str, int], *, fast: int, chunk: int = 1, every: float = 1.0) -> None:
        self.upstream = upstream
        self.fast, self.chunk, self.every = fast, chunk, every
        self.throttled = True
        self.trickling = threading.Event()  # set once a connection is past its fast bytes
        self.connections = 0  # accepted so far (a pull delivered twice connects twice)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self._sockets: list[socket.socket] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="trickle-proxy", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._done.is_set():
            try:
                client = self._listener.accept()[0]
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            server = socket.create_connection(self.upstream, timeout=10)
            server.settimeout(None)
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, slow: bool) -> None:
        passed = 0
        with contextlib.suppress(OSError):
            while not self._done.is_set():
                data = source.recv(65536)
                if not data:
                    break
                while data:
                    if slow and self.throttled and passed >= self.fast:
                        self.trickling.set()
                        piece, data = data[: self.chunk], data[self.chunk :]
                        time.sleep(self.every)
                    else:
                        take = max(self.fast - passed, 1) if slow and self.throttled else len(data)
                        piece, data = data[:take], data[take:]
                    sink.sendall(piece)
                    passed += len(piece)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._done.set()
        self._thread.join(5)
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._listener.close()
