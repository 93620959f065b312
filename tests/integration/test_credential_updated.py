"""A login's "Updated" is the date of its last successful data update (Improvado's
connection settings: "Updated Date - date of the last successfull data update").

A failed pull moved it as well, so a login that had never worked read "Updated" at its last
failure, beside its Error (app audit). Against a real FTP server (pyftpdlib)."""

from __future__ import annotations

import time
import uuid

from ftpd import pyftpdlib_server

from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import CredentialInput, Services
from connectbatch.transfer.specs import FtpSpec, FtpTls


def test_only_a_successful_pull_moves_a_login_s_updated_date(services: Services) -> None:
    with pyftpdlib_server() as server:
        folder = server.mkdir(f"/inbox-{uuid.uuid4().hex[:10]}")
        draft = Connection(
            "Partner FTP", "call_conversions", Direction.INBOUND, Method.FTP, Methodology.PULL,
            host=server.host, port=server.port, folder=folder, pattern="calls*.csv",
            transfer=FtpSpec(tls=FtpTls.NONE),
        )  # fmt: skip
        services.create_connection(draft, CredentialInput("partner", server.username, "wrong password"))
        (created,) = services.credentials("Partner FTP")

        time.sleep(0.05)
        assert services.pull("Partner FTP").status is RunStatus.FAILED
        (failed,) = services.credentials("Partner FTP")
        assert failed.status == "Error" and failed.last_error
        assert failed.updated_at == created.updated_at  # never updated any data

        fixed = CredentialInput("fixed", server.username, server.password)
        added, _ = services.add_credential("Partner FTP", fixed)
        time.sleep(0.05)
        assert services.pull("Partner FTP").status is RunStatus.COMPLETED
        worked = next(c for c in services.credentials("Partner FTP") if c.id == added.id)
        assert worked.status == "Active" and worked.updated_at > added.updated_at
