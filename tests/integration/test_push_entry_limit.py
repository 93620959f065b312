"""A push folder takes at most 10,000 files and folders: a new file past that is refused,
as a new folder was, on both hosted servers.

Only folders and writes that add bytes were checked, so one login could create empty files
(zero-byte opens, empty STORs, in-flight names never loaded) until the disk every partner's
folder and the database share ran out of inodes (security audit: 12,000 in one session).
Real paramiko and ftplib clients."""

from __future__ import annotations

import contextlib
import ftplib
import io
from pathlib import Path

import pytest
from helpers.push import ftps, push_login
from test_push_limits import TIMEOUT, ftp_server, sftp_of, sftp_server, ssh

from connectbatch.models import Connection, Method
from connectbatch.services import Services
from connectbatch.transfer.push.quota import MAX_SCAN_ENTRIES

FULL = "too many files and folders in your folder: at most 10,000"


def _fill(services: Services, connection: Connection) -> Path:
    """The push folder past the entries it may hold (as a full scan finds it), one of them
    `kept.part`."""
    home = services.settings.home / "push" / str(connection.id)
    home.mkdir(parents=True, exist_ok=True)
    for i in range(MAX_SCAN_ENTRIES + 1):
        (home / f"pre{i}.part").touch()
    (home / "pre0.part").rename(home / "kept.part")
    return home


def test_sftp_a_new_file_past_the_entry_limit_is_refused(services: Services) -> None:
    connection, acme = push_login(services, "Acme", Method.SFTP)
    with sftp_server(services) as (gateway, server), contextlib.closing(ssh(server, acme)) as transport:
        home = _fill(services, connection)
        sftp = sftp_of(transport)
        with pytest.raises(OSError, match=FULL):
            sftp.open("extra.part", "w").close()
        gateway.wait(TIMEOUT)
    assert len(list(home.iterdir())) == MAX_SCAN_ENTRIES + 1
    assert not (home / "extra.part").exists()


def test_ftp_a_new_file_past_the_entry_limit_is_refused(services: Services) -> None:
    connection, brand = push_login(services, "Brand", Method.FTP)
    with ftp_server(services) as (gateway, server), contextlib.closing(ftps(server, brand)) as ftp:
        home = _fill(services, connection)
        with pytest.raises(ftplib.error_perm, match=f"^550 {FULL}"):
            ftp.storbinary("STOR extra.part", io.BytesIO(b""))
        assert ftp.nlst("kept.part") == ["kept.part"]  # the session goes on
        gateway.wait(TIMEOUT)
    assert len(list(home.iterdir())) == MAX_SCAN_ENTRIES + 1
    assert not (home / "extra.part").exists()
