"""A scheduled pull whose first look at the partner's folder raises an error no one foresaw
(a pull audit: a listing's size of 5,000 digits raised ValueError) records a Failed run that
says so, against a real sshd. The error escaped before any run existed: the connection's
history showed nothing, the log a traceback, and the login stayed open."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import call_csv
from sshd import Sshd

from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import CredentialInput, Services
from connectbatch.transfer.pull import collect
from connectbatch.transfer.specs import SftpSpec

pytest_plugins = ["sshd"]
SURPRISE = "Exceeds the limit (4300 digits) for integer string conversion"


def test_an_unforeseen_error_of_a_scheduled_look_is_a_failed_run(
    services: Services, sshd_server: Sshd, sftp_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sshd_server.put(sftp_folder, "Calls_0001.csv", call_csv(2))
    draft = Connection(
        "Partner folder", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
        host=sshd_server.host, port=sshd_server.port, folder=str(sftp_folder), pattern="Calls_*.csv",
        transfer=SftpSpec(),
    )  # fmt: skip
    services.create_connection(draft, CredentialInput("partner", sshd_server.user, sshd_server.password))
    closed: list[object] = []
    listed = collect._list

    def unforeseen(ingestor, connection, transport):  # type: ignore[no-untyped-def]
        listed(ingestor, connection, transport)  # a real look at the folder, then a surprise
        real_close = transport.close
        transport.close = lambda: (closed.append(transport), real_close())
        raise ValueError(SURPRISE)

    monkeypatch.setattr(collect, "_list", unforeseen)
    connection_id = services.connection("Partner folder").id
    with pytest.raises(ValueError):
        services.scheduled_pull(connection_id)

    [run] = services.runs("Partner folder")
    assert run.status is RunStatus.FAILED
    assert (
        run.reason
        == "internal error: ValueError: Exceeds the limit (4300 digits) for integer string conversion"
    )
    assert closed, "the login was left open"
    monkeypatch.undo()
    assert services.pull("Partner folder").rows_accepted == 2  # the retry takes the file
