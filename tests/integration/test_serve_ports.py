"""`connectbatch serve` on a first day: a hosted server's port already taken (by another
program or a second `serve`) or a bind address that is not this machine's. A real `serve`
process, a real socket holding the port: the operator gets one line naming the server, the
address and the variable to change, exit code 2, and no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port another program listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def serve(home: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTBATCH_")}
    env.update(PYTHONPATH=str(REPO), CONNECTBATCH_HOME=str(home), CONNECTBATCH_BIND="127.0.0.1")
    env.update({f"CONNECTBATCH_{name}": value for name, value in variables.items()})
    return subprocess.run(
        [sys.executable, "-m", "connectbatch", "serve"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("connectbatch: error:")]


def test_a_taken_ftp_port_names_the_server_the_port_and_the_variable(tmp_path: Path, held_port: int) -> None:
    """pyftpdlib wraps the socket's error in a bare OSError: `serve` ended with
    "connectbatch: error: [Errno 98] Address already in use", which names neither the
    server nor the port nor what to change."""
    done = serve(tmp_path, SFTP_PORT="0", FTP_PORT=str(held_port))
    assert done.returncode == 2
    assert error_lines(done) == [
        f"connectbatch: error: the hosted FTP server cannot listen on 127.0.0.1:{held_port}: "
        "Address already in use; set CONNECTBATCH_FTP_PORT to a free port (0 turns that server off) "
        "or CONNECTBATCH_BIND to an address of this machine"
    ]
    assert "Traceback" not in done.stderr


def test_a_taken_sftp_port_names_the_sftp_variable(tmp_path: Path, held_port: int) -> None:
    done = serve(tmp_path, SFTP_PORT=str(held_port), FTP_PORT="0")
    assert done.returncode == 2
    assert [line.split(": Address")[0] for line in error_lines(done)] == [
        f"connectbatch: error: the hosted SFTP server cannot listen on 127.0.0.1:{held_port}"
    ]
    assert "CONNECTBATCH_SFTP_PORT" in done.stderr


def test_a_bind_address_that_does_not_resolve_says_which_setting(tmp_path: Path) -> None:
    """Was "[Errno -2] Name or service not known": no host name, no variable."""
    done = serve(tmp_path, BIND="no-such-host.invalid", FTP_PORT="0")
    assert done.returncode == 2
    (line,) = error_lines(done)
    assert line.startswith("connectbatch: error: the hosted SFTP server cannot listen on no-such-host")
    assert "CONNECTBATCH_BIND" in line
