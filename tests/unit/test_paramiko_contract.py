"""The paramiko internals our hosted SFTP server (`connectbatch.transfer.push.sftp`) builds on
are still there, with the signatures it calls and overrides.

The fast SFTP loop (`sftp.channel.SftpChannel`) replaces private methods of paramiko's
`SFTPServer` (`_read_packet`, `_send_packet`, `_send_server_version`, the request loop) and
hands every request but READ/WRITE/CLOSE to the private `_process`, which answers through
`_send_packet` and keeps open files in `file_table` under bytes handles. None of that is
paramiko's public API: a paramiko upgrade that renames or reshapes it must fail here, in the
tests, not at a partner's upload. `pyproject.toml` pins paramiko to the versions this was
checked against; widen the pin only after this file and tests/integration/test_sftp_push.py
pass on the new version.
"""

from __future__ import annotations

import inspect
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
import pytest
from paramiko import sftp

from connectbatch.transfer.push.gateway import Account
from connectbatch.transfer.push.quota import PushQuota
from connectbatch.transfer.push.sftp.channel import SftpChannel
from connectbatch.transfer.push.sftp.filesystem import MAX_OPEN_FILES_PER_LOGIN, ConfinedFs
from connectbatch.transfer.push.sftp.guard import OpenFiles


def _parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


# (owner, attribute, the parameters our code calls it with or overrides it with)
SIGNATURES: list[tuple[type[Any], str, list[str]]] = [
    # private methods SftpChannel overrides or calls
    (paramiko.SFTPServer, "_process", ["self", "t", "request_number", "msg"]),
    (paramiko.SFTPServer, "_read_packet", ["self"]),
    (paramiko.SFTPServer, "_send_packet", ["self", "t", "packet"]),
    (paramiko.SFTPServer, "_send_server_version", ["self"]),
    # the public hooks it overrides, and the constructor the transport calls
    (paramiko.SFTPServer, "__init__", ["self", "channel", "name", "server", "sftp_si", "args", "kwargs"]),
    (paramiko.SFTPServer, "start_subsystem", ["self", "name", "transport", "channel"]),
    (paramiko.SFTPServer, "finish_subsystem", ["self"]),
    (paramiko.SubsystemHandler, "finish_subsystem", ["self"]),
    (paramiko.SubsystemHandler, "__init__", ["self", "channel", "name", "server"]),
    # what paramiko's _process calls on our file system and our open files
    (paramiko.SFTPServerInterface, "__init__", ["self", "server", "args", "kwargs"]),
    (paramiko.SFTPHandle, "__init__", ["self", "flags"]),
    (paramiko.SFTPHandle, "_get_name", ["self"]),
    (paramiko.SFTPHandle, "_set_name", ["self", "name"]),
    (paramiko.SFTPAttributes, "from_stat", ["obj", "filename"]),
    # the pull's folder listing with names as bytes (transfer/pull/sftp/listing.py)
    (paramiko.SFTPClient, "_request", ["self", "t", "args"]),
    (paramiko.SFTPAttributes, "_from_msg", ["msg", "filename", "longname"]),
    # login and channel requests (login.Login)
    (paramiko.ServerInterface, "check_channel_subsystem_request", ["self", "channel", "name"]),
    (paramiko.ServerInterface, "check_auth_password", ["self", "username", "password"]),
    (paramiko.ServerInterface, "check_channel_request", ["self", "kind", "chanid"]),
    # the transport the server sets up (server.HostedSftpServer._serve)
    (paramiko.Transport, "_get_subsystem_handler", ["self", "name"]),
    (paramiko.Transport, "set_subsystem_handler", ["self", "name", "handler", "args", "kwargs"]),
    (paramiko.Transport, "set_log_channel", ["self", "name"]),
    (paramiko.Transport, "add_server_key", ["self", "key"]),
    (paramiko.Transport, "start_server", ["self", "event", "server"]),
    (paramiko.Transport, "set_keepalive", ["self", "interval"]),
    # a login over its login's session limit is told why (login.Login._tell and disconnect)
    (paramiko.Transport, "_send_message", ["self", "data"]),
    (paramiko.Transport, "get_banner", ["self"]),
]


@pytest.mark.parametrize(
    ("owner", "name", "expected"), SIGNATURES, ids=[f"{o.__name__}.{n}" for o, n, _ in SIGNATURES]
)
def test_paramiko_still_has_what_the_hosted_server_relies_on(
    owner: type[Any], name: str, expected: list[str]
) -> None:
    assert hasattr(owner, name), f"paramiko {paramiko.__version__} has no {owner.__name__}.{name}"
    assert _parameters(getattr(owner, name)) == expected


def test_the_transport_takes_our_window_and_packet_size() -> None:
    parameters = inspect.signature(paramiko.Transport.__init__).parameters
    assert {"default_window_size", "default_max_packet_size"} <= set(parameters)
    from paramiko import common

    # 256 KiB packets and a 16 MiB window are not clamped away (sftp.server's tuning)
    assert common.MAX_WINDOW_SIZE >= 16 * 1024 * 1024
    assert common.MIN_PACKET_SIZE <= 256 * 1024


def test_a_transport_keeps_its_open_channels_where_the_login_counts_them() -> None:
    """login.Login._open_channels counts `Transport._channels` (a ChannelMap of the channels
    not closed yet) to refuse a connection that only opens channels."""
    import socket

    left, right = socket.socketpair()
    try:
        transport = paramiko.Transport(left)
        assert len(transport._channels.values()) == 0
        channel = paramiko.Channel(7)  # the map holds it weakly: paramiko keeps it while open
        transport._channels.put(7, channel)
        assert transport._channels.values() == [channel]
        transport._channels.delete(7)
        assert len(transport._channels.values()) == 0
    finally:
        left.close()
        right.close()


def test_sftp_attributes_keep_their_flags_where_setstat_reads_them() -> None:
    attributes = paramiko.SFTPAttributes()
    assert attributes._flags == 0
    assert attributes.FLAG_AMTIME == 8
    assert paramiko.SFTPAttributes.from_stat(os.stat(__file__), "x").filename == "x"


def test_the_protocol_constants_are_sftp_version_3() -> None:
    expected = {"CMD_INIT": 1, "CMD_VERSION": 2, "CMD_OPEN": 3, "CMD_CLOSE": 4, "CMD_READ": 5}
    expected |= {"CMD_WRITE": 6, "CMD_STATUS": 101, "CMD_HANDLE": 102, "CMD_DATA": 103, "CMD_ATTRS": 105}
    assert {name: getattr(sftp, name) for name in expected} == expected
    assert (sftp.SFTP_OK, sftp.SFTP_EOF, sftp.SFTP_NO_SUCH_FILE, sftp.SFTP_PERMISSION_DENIED) == (0, 1, 2, 3)
    assert (sftp.SFTP_FAILURE, sftp.SFTP_BAD_MESSAGE, sftp.SFTP_OP_UNSUPPORTED) == (4, 5, 8)
    assert len(sftp.SFTP_DESC) >= 9


# --- one session through SftpChannel and paramiko's _process, without a network -----------------


class _Transport:
    def get_log_channel(self) -> str:
        return "connectbatch.transfer.push.sftp.paramiko"

    def get_hexdump(self) -> bool:
        return False

    def is_active(self) -> bool:
        return True

    def _log(self, *args: object) -> None:
        pass


class _Channel:
    """The SSH channel paramiko would hand the subsystem, with a scripted client behind it:
    each `recv` asks the client for its next bytes, given everything we have sent so far."""

    def __init__(self, client: Callable[[bytes], bytes]) -> None:
        self.client = client
        self.sent = bytearray()
        self.closed = False

    def get_transport(self) -> _Transport:
        return _Transport()

    def get_name(self) -> str:
        return "chan 0"

    def recv(self, size: int) -> bytes:
        return self.client(bytes(self.sent))

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def close(self) -> None:
        self.closed = True


@dataclass
class _Gateway:
    uploads: list[Path] = field(default_factory=list)
    quota: PushQuota = field(default_factory=PushQuota)

    def upload_complete(self, account: Account, path: Path) -> None:
        self.uploads.append(path)

    def upload_over_quota(self, account: Account, path: Path) -> None:
        raise AssertionError("no upload here passes the quota")


@dataclass
class _Server:
    gateway: _Gateway
    channels: list[SftpChannel] = field(default_factory=list)
    open_files: OpenFiles = field(default_factory=lambda: OpenFiles(MAX_OPEN_FILES_PER_LOGIN))

    def track_channel(self, channel: SftpChannel) -> None:
        self.channels.append(channel)


@dataclass
class _Login:
    account: Account
    server: _Server
    peer: str = "127.0.0.1:50000"


def _packet(kind: int, request_id: int | None, *fields: int | str | bytes) -> bytes:
    message = paramiko.Message()
    message.add_byte(bytes((kind,)))
    if request_id is not None:
        message.add_int(request_id)
    for value in fields:
        if isinstance(value, int):
            message.add_int(value)
        else:
            message.add_string(value)
    body = message.asbytes()
    return struct.pack(">I", len(body)) + body


def _replies(data: bytes) -> list[tuple[int, paramiko.Message]]:
    replies = []
    while data:
        (length,) = struct.unpack_from(">I", data)
        replies.append((data[4], paramiko.Message(data[5 : 4 + length])))
        data = data[4 + length :]
    return replies


def test_an_upload_round_trip_through_paramikos_private_request_loop(tmp_path: Path) -> None:
    """INIT (our version reply), OPEN (paramiko's _process → our file system → a handle in
    file_table), WRITE and CLOSE (our fast paths, finding that handle), STAT (paramiko again):
    every reply arrives, in order, and the closed upload reaches the gateway."""
    account = Account("partner", 7, "Partner calls", tmp_path.resolve(), True, 1 << 20)
    gateway = _Gateway()
    login = _Login(account, _Server(gateway))
    data = b"CampaignId,MediaId\n1,2\n"
    write_create_truncate = sftp.SFTP_FLAG_WRITE | sftp.SFTP_FLAG_CREATE | sftp.SFTP_FLAG_TRUNC
    script = iter(["init", "open", "write", "end"])

    def client(sent: bytes) -> bytes:
        step = next(script)
        if step == "init":
            return _packet(sftp.CMD_INIT, None, 3)
        if step == "open":
            return _packet(sftp.CMD_OPEN, 1, "/calls.csv", write_create_truncate, 0)
        if step == "write":
            handle = _replies(sent)[-1][1]
            assert handle.get_int() == 1
            name = handle.get_binary()
            write = paramiko.Message()
            write.add_byte(bytes((sftp.CMD_WRITE,)))
            write.add_int(2)
            write.add_string(name)
            write.add_int64(0)
            write.add_string(data)
            body = write.asbytes()
            return (
                struct.pack(">I", len(body))
                + body
                + _packet(sftp.CMD_CLOSE, 3, name)
                + _packet(sftp.CMD_STAT, 4, "/calls.csv")
            )
        return b""  # the client hangs up

    channel = _Channel(client)
    subsystem = SftpChannel(channel, "sftp", login, ConfinedFs)  # type: ignore[arg-type]
    assert login.server.channels == [subsystem]
    assert isinstance(subsystem.server, ConfinedFs)
    subsystem.start_subsystem("sftp", _Transport(), channel)  # type: ignore[arg-type]

    replies = _replies(bytes(channel.sent))
    kinds = [kind for kind, _ in replies]
    assert kinds == [sftp.CMD_VERSION, sftp.CMD_HANDLE, sftp.CMD_STATUS, sftp.CMD_STATUS, sftp.CMD_ATTRS]
    assert replies[0][1].get_int() == 3
    assert [replies[2][1].get_int(), replies[2][1].get_int()] == [2, sftp.SFTP_OK]
    assert [replies[3][1].get_int(), replies[3][1].get_int()] == [3, sftp.SFTP_OK]
    stat = replies[4][1]
    assert stat.get_int() == 4
    assert stat.get_int() & paramiko.SFTPAttributes.FLAG_SIZE
    assert stat.get_int64() == len(data)
    assert (tmp_path / "calls.csv").read_bytes() == data
    assert gateway.uploads == [tmp_path.resolve() / "calls.csv"]
    assert subsystem.file_table == {}
    assert subsystem.folder_table == {}

    subsystem.finish_subsystem()  # paramiko's own cleanup closes the channel
    assert channel.closed
