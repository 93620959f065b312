"""A "Pull from us" login whose connection is deleted stops downloading at once, in the
session already logged in too.

Only writes asked whether the login still stood: a pickup's session never writes, so an
offboarded partner went on listing and downloading exports for as long as it kept its session
open (outbound audit). Real paramiko and ftplib clients against the hosted servers."""

from __future__ import annotations

import contextlib
import ftplib

import pytest
from helpers.push import ftps
from test_push_limits import ftp_server, sftp_of, sftp_server, ssh

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Provisioned, Services


def _pickup(services: Services, method: Method) -> tuple[Connection, Provisioned]:
    draft = Connection(
        "Acme pickup", "call_conversions", Direction.OUTBOUND, method, Methodology.PULL_FROM_US
    )
    connection, login = services.create_connection(draft)
    assert login is not None
    folder = services.settings.outbound / str(connection.id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "export-1.csv").write_bytes(b"CallSessionId\r\ncs-1\r\n")
    return connection, login


def test_sftp_a_deleted_pickups_session_lists_and_downloads_nothing_more(services: Services) -> None:
    connection, login = _pickup(services, Method.SFTP)
    with sftp_server(services) as (_gateway, server), contextlib.closing(ssh(server, login)) as transport:
        sftp = sftp_of(transport)
        assert sftp.listdir("/") == ["export-1.csv"]
        services.delete_connection(connection.id)
        with pytest.raises(OSError, match="deleted"):
            sftp.open("export-1.csv").read()


def test_ftp_a_deleted_pickups_session_lists_and_downloads_nothing_more(services: Services) -> None:
    connection, login = _pickup(services, Method.FTP)
    with ftp_server(services) as (_gateway, server), contextlib.closing(ftps(server, login)) as ftp:
        assert ftp.nlst() == ["export-1.csv"]
        services.delete_connection(connection.id)
        with pytest.raises(ftplib.error_perm, match=r"^550 .*deleted"):
            ftp.retrbinary("RETR export-1.csv", lambda _data: None)
