"""A scheduled poll of a partner's SFTP folder full of files it does not take yet (younger than
the connection's minimum age), against a real sshd: the ledger is asked once for the listing,
not once per file.

The bug: whether such a file's skip was recorded before (one ledger line per decision) was a
query per listed file: 2,000 waiting files made every quiet poll take 4.4 s on an idle machine,
the engine's pull worker busy all that while, and a folder of 20,000 ten times as long. Earlier
runs' skip lines are now read for the whole listing in one statement, as the lines of files
already taken were (`store.taken.Settled`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from helpers import call_csv
from sshd import Sshd

from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import CredentialInput, Services
from connectbatch.store.db import Database
from connectbatch.transfer.specs import SftpSpec

pytest_plugins = ["sshd"]
WAITING = 200


def test_a_quiet_poll_of_many_waiting_files_asks_the_ledger_once(
    services: Services, sshd_server: Sshd, sftp_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = dt.datetime.now(dt.UTC)
    for i in range(WAITING):
        sshd_server.put(sftp_folder, f"Calls_{i:04d}.csv", call_csv(1, prefix=f"w{i}"), now)
    draft = Connection(
        "Busy folder", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
        host=sshd_server.host, port=sshd_server.port, folder=str(sftp_folder), pattern="Calls_*.csv",
        transfer=SftpSpec(), min_age_seconds=3600,
    )  # fmt: skip
    services.create_connection(draft, CredentialInput("partner", sshd_server.user, sshd_server.password))
    first = services.pull("Busy folder")
    assert first.status is RunStatus.COMPLETED and first.files_skipped == WAITING

    opened = [0]
    connect = Database.connect

    def counted(self: Database):  # type: ignore[no-untyped-def]
        opened[0] += 1
        return connect(self)

    monkeypatch.setattr(Database, "connect", counted)
    connection_id = services.connection("Busy folder").id
    assert services.scheduled_pull(connection_id) is None  # each skip was recorded once: quiet
    assert opened[0] < 10, f"the ledger was opened {opened[0]} times for {WAITING} waiting files"
