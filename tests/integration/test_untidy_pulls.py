"""Pulls from partner servers that are not tidy: a real OpenSSH sshd (SFTP) and a real vsftpd
(FTP, no MLSD) on 127.0.0.1, the real pipeline and DuckDB. Each test is something a
partner's folder really holds: a file our login may not read, a folder where we may not
delete, a name that is not UTF-8, a name a Mac wrote in decomposed Unicode, files that are
symlinks. One such file
must cost that file only, with a message saying what to fix, never every run of the folder.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import ftpd
import pytest
from helpers import call_csv

from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import CredentialInput, Services
from connectbatch.transfer.specs import FtpSpec, FtpTls

if TYPE_CHECKING:
    from sshd import Sshd

pytest_plugins = ["sshd"]

OLD = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)


@dataclass
class PartnerFolder:
    """One fresh folder on a partner's server, as the local path behind it and the path our
    connection uses, with the Linux owner the server's user needs on what is put there."""

    method: Method
    host: str
    port: int
    username: str
    password: str
    local: Path
    remote: str
    owner: tuple[int, int]

    def put(self, name: str | bytes, data: bytes, minutes: int = 0) -> Path:
        path = self.local / (os.fsdecode(name) if isinstance(name, bytes) else name)
        path.write_bytes(data)
        os.chown(path, *self.owner)
        stamp = (OLD + dt.timedelta(minutes=minutes)).timestamp()
        os.utime(path, (stamp, stamp))
        return path

    def names(self) -> set[str]:
        return {p.name for p in self.local.iterdir()}

    def connect(self, services: Services, pattern: str = "Calls_*.csv", **attrs: object) -> str:
        extra: dict[str, object] = {"transfer": FtpSpec(tls=FtpTls.NONE)} if self.method is Method.FTP else {}
        draft = Connection(
            "Untidy partner", "call_conversions", Direction.INBOUND, self.method, Methodology.PULL,
            host=self.host, port=self.port, folder=self.remote, pattern=pattern,
            **extra, **attrs,  # type: ignore[arg-type]
        )  # fmt: skip
        services.create_connection(draft, CredentialInput("partner", self.username, self.password))
        return draft.name


@pytest.fixture(scope="module")
def vsftpd_server() -> Iterator[ftpd.FtpServer]:
    reason = ftpd.vsftpd_unavailable()
    if reason:
        pytest.skip(reason)
    with ftpd.vsftpd() as server:
        yield server


@pytest.fixture(params=["sftp", "ftp"])
def partner(request: pytest.FixtureRequest) -> Iterator[PartnerFolder]:
    if request.param == "sftp":
        sshd: Sshd = request.getfixturevalue("sshd_server")
        local = sshd.make_folder()
        stat = local.stat()
        yield PartnerFolder(
            Method.SFTP, sshd.host, sshd.port, sshd.user, sshd.password, local, str(local),
            (stat.st_uid, stat.st_gid),
        )  # fmt: skip
    else:
        server: ftpd.FtpServer = request.getfixturevalue("vsftpd_server")
        remote = server.mkdir(f"/untidy-{request.node.name.split('[')[0][-40:]}")
        local = server.local(remote)
        assert server.owner is not None
        yield PartnerFolder(
            Method.FTP, server.host, server.port, server.username, server.password, local, remote,
            server.owner,
        )  # fmt: skip
    local.chmod(0o755)
    shutil.rmtree(local)


def files_of(services: Services, run_id: int) -> dict[str, tuple[str, str | None]]:
    return {f.name: (str(f.state), f.message) for f in services.run_files(run_id)}


def test_a_file_our_login_cannot_read_is_skipped_and_the_files_beside_it_go_in(
    services: Services, partner: PartnerFolder
) -> None:
    partner.put("Calls_1.csv", call_csv(2, prefix="r1"), 1)
    partner.put("Calls_2.csv", call_csv(2, prefix="r2"), 2).chmod(0)
    partner.put("Calls_3.csv", call_csv(2, prefix="r3"), 3)
    name = partner.connect(services)

    first = services.pull(name)

    assert first.status is RunStatus.COMPLETED, first.reason
    found = files_of(services, first.id)
    assert (found["Calls_1.csv"][0], found["Calls_3.csv"][0]) == ("loaded", "loaded")
    state, message = found["Calls_2.csv"]
    assert state == "skipped" and "Calls_2.csv" in (message or "")
    assert "read" in (message or "") and partner.username in (message or ""), message
    assert "Calls_2.csv" in (first.reason or "")
    [credential] = services.credentials(name)
    assert credential.status == "Active" and not credential.last_error

    again = services.pull(name)  # still unreadable: tried again, not recorded twice
    assert again.status is RunStatus.COMPLETED and files_of(services, again.id) == {}

    (partner.local / "Calls_2.csv").chmod(0o644)  # the partner fixes it; size and time unchanged
    fixed = services.pull(name)
    assert files_of(services, fixed.id) == {"Calls_2.csv": ("loaded", None)}
    assert services.count_actions(name) == 6


def test_a_delete_the_server_refuses_loads_the_file_once_and_holds_back_nothing(
    services: Services, partner: PartnerFolder
) -> None:
    partner.put("Calls_1.csv", call_csv(2, prefix="d1"), 1)
    partner.put("Calls_2.csv", call_csv(2, prefix="d2"), 2)
    partner.local.chmod(0o555)  # our login may read but not delete there
    name = partner.connect(services, after_success="delete")

    first = services.pull(name)

    assert first.status is RunStatus.COMPLETED, first.reason
    assert first.files_loaded == 2
    reason = first.reason or ""
    assert "Calls_1.csv, Calls_2.csv taken but not deleted" in reason, reason
    assert "permission to delete" in reason and "leave" in reason, reason
    [credential] = services.credentials(name)
    assert credential.status == "Active"

    partner.local.chmod(0o755)
    partner.put("Calls_3.csv", call_csv(2, prefix="d3"), 3)
    partner.local.chmod(0o555)
    second = services.pull(name)
    assert second.status is RunStatus.COMPLETED, second.reason
    assert files_of(services, second.id) == {"Calls_3.csv": ("loaded", None)}  # not held back
    assert services.count_actions(name) == 6  # the undeleted files were not loaded again
    assert partner.names() == {"Calls_1.csv", "Calls_2.csv", "Calls_3.csv"}

    partner.local.chmod(0o755)  # permission given: the next run tidies up what it had taken
    third = services.pull(name)
    assert third.status is RunStatus.COMPLETED and third.files_loaded == 0
    assert partner.names() == set()


def test_an_archive_folder_that_is_a_file_is_named_and_the_run_completes(
    services: Services, partner: PartnerFolder
) -> None:
    partner.put("Calls_1.csv", call_csv(2, prefix="a1"), 1)
    partner.put("done", b"a file where the archive folder should be")
    name = partner.connect(services, after_success="archive", archive_folder=f"{partner.remote}/done")

    run = services.pull(name)

    assert run.status is RunStatus.COMPLETED, run.reason
    assert run.files_loaded == 1
    assert "Calls_1.csv taken but not archived" in (run.reason or ""), run.reason
    assert "done" in (run.reason or "")


def test_a_name_that_is_not_utf8_does_not_stop_the_folder(services: Services, partner: PartnerFolder) -> None:
    partner.put("Calls_1.csv", call_csv(2, prefix="u1"), 1)
    partner.put(b"Calls_caf\xe9.csv", call_csv(2, prefix="u2"), 2)  # ISO-8859-1, from an old PC
    name = partner.connect(services, after_success="delete")

    run = services.pull(name)

    assert run.status is RunStatus.COMPLETED, run.reason
    assert files_of(services, run.id) == {"Calls_1.csv": ("loaded", None), "Calls_café.csv": ("loaded", None)}
    assert partner.names() == set()  # deleted by the name as the server wrote it


def test_a_name_a_mac_wrote_decomposed_matches_the_pattern(
    services: Services, partner: PartnerFolder
) -> None:
    decomposed = unicodedata.normalize("NFD", "Ventes_café_1.csv")
    partner.put(decomposed, call_csv(2, prefix="n1"), 1)
    name = partner.connect(services, pattern=unicodedata.normalize("NFC", "Ventes_café_*.csv"))

    run = services.pull(name)

    assert run.status is RunStatus.COMPLETED, run.reason
    assert [f.state for f in services.run_files(run.id)] == ["loaded"]
    assert services.count_actions(name) == 2


def test_a_symlinked_file_is_taken_as_the_file_and_broken_or_folder_links_are_not(
    services: Services, partner: PartnerFolder
) -> None:
    """An export job that writes its files elsewhere and links them into the folder: the
    SFTP pull skipped every such file while the FTP pull took them. Both take a link to a
    file now, and only that: a link to a folder or to nothing is left alone, and deleting
    after the load removes the link, never the partner's own file."""
    exports = partner.local / "exports"
    exports.mkdir()
    os.chown(exports, *partner.owner)
    target = exports / "calls-0301.csv"
    linked = call_csv(3, prefix="lnk")
    target.write_bytes(linked)
    os.chown(target, *partner.owner)
    partner.put("Calls_1.csv", call_csv(2, prefix="reg"), 1)
    (partner.local / "Calls_2.csv").symlink_to("exports/calls-0301.csv")
    (partner.local / "Calls_3.csv").symlink_to("exports")  # a folder
    (partner.local / "Calls_4.csv").symlink_to("exports/gone.csv")  # leads nowhere
    name = partner.connect(services, after_success="delete")

    run = services.pull(name)

    assert run.status is RunStatus.COMPLETED, run.reason
    assert files_of(services, run.id) == {"Calls_1.csv": ("loaded", None), "Calls_2.csv": ("loaded", None)}
    assert services.count_actions(name) == 5
    assert partner.names() == {"exports", "Calls_3.csv", "Calls_4.csv"}  # the links taken are gone ...
    assert target.read_bytes() == linked  # ... the partner's file is not
