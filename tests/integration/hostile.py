"""Small hostile servers on 127.0.0.1 for the pull audits' tests (test_pull_hostile_*.py):
a socket server that runs each session on a thread of its own, and a paramiko SSH server whose
SFTP subsystem the test scripts. Real sockets, real clients: only the server misbehaves."""

from __future__ import annotations

import socket
import threading

import paramiko
from paramiko.sftp_si import SFTPServerInterface

from connectbatch.models import Connection, Run
from connectbatch.services import Services


class SocketServer:
    """Listens on a free port of 127.0.0.1; each accepted connection goes to `_session` on a
    thread of its own. A subclass sets what its sessions need before calling `__init__`."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(sock,), daemon=True).start()

    def _session(self, sock: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.listener.close()


class PasswordLogin(paramiko.ServerInterface):
    """One user and password; sessions only."""

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user, password

    def check_auth_password(self, username: str, password: str) -> int:
        ok = (username, password) == (self.user, self.password)
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def get_allowed_auths(self, username: str) -> str:
        return "password"

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return (
            paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        )


class ScriptedSftpServer(SocketServer):
    """An SSH server whose SFTP subsystem is `subsystem` over `interface` (the test's script)."""

    def __init__(
        self,
        subsystem: type[paramiko.SFTPServer],
        interface: type[SFTPServerInterface],
        user: str,
        password: str,
    ) -> None:
        self.host_key = paramiko.ECDSAKey.generate()
        self.subsystem, self.interface = subsystem, interface
        self.login = PasswordLogin(user, password)
        self.transports: list[paramiko.Transport] = []
        super().__init__()

    def _session(self, sock: socket.socket) -> None:
        transport = paramiko.Transport(sock)
        transport.add_server_key(self.host_key)
        transport.set_subsystem_handler("sftp", self.subsystem, self.interface)
        transport.start_server(server=self.login)
        self.transports.append(transport)

    def close(self) -> None:
        super().close()
        for transport in self.transports:
            transport.close()


def pull_within(services: Services, connection: Connection, seconds: float) -> Run:
    """A scheduled pull, in a thread of its own so that a pull that never ends fails the test."""
    runs: list[Run | None] = []
    thread = threading.Thread(target=lambda: runs.append(services.scheduled_pull(connection.id)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the pull was still going after {seconds:g} s"
    [run] = runs
    assert run is not None
    return run
