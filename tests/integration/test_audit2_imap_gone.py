"""A mail that leaves the mailbox between the listing and its download, against a real Dovecot:
that file alone is not taken, as a file deleted from an SFTP or FTP folder meanwhile.

The bug: a run lists every unprocessed mail, then downloads them one by one; a mail the run's
cache no longer held (more than `CACHE_BYTES` of mail in one run) was downloaded again at its
turn, and one expunged meanwhile (by a person in their mail client, or by another connection
reading the same mailbox) raised a plain TransportError: the whole run Failed, the files after
it were not taken, and the credential was marked Error as if the login were wrong. It is now
a file the server refused (`RemoteFileRefusedError`): recorded as skipped, the mail beside it
loaded, the run Completed, the login left Active.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dovecot import DovecotServer, MailUser, running_dovecot
from helpers import call_csv
from test_imap_pull import build_message, mailed_calls

from connectbatch.models import RunStatus
from connectbatch.services import Services
from connectbatch.settings import Settings
from connectbatch.transfer import base
from connectbatch.transfer.pull import collect
from connectbatch.transfer.pull.imap import transport as imap_transport


@pytest.fixture(scope="module")
def server() -> Iterator[DovecotServer]:
    with running_dovecot() as running:
        yield running


def test_a_mail_expunged_between_listing_and_download_costs_only_its_own_file(
    server: DovecotServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user: MailUser = server.add_user()
    services = Services(Settings(home=tmp_path / "home", lock_timeout=10.0))
    mailed_calls(services, server, user)
    gone = server.append(user, build_message(("calls_1.csv", call_csv(2, prefix="gone"), "text/csv")))
    server.append(user, build_message(("calls_2.csv", call_csv(3, prefix="kept"), "text/csv")))
    monkeypatch.setattr(imap_transport, "CACHE_BYTES", 0)  # a run with more mail than the cache

    def expunged_after_listing(method: str, endpoint: base.Endpoint) -> base.Transport:
        transport = base.open_transport(method, endpoint)
        listed = transport.list_files

        def list_then_expunge(folder: str, pattern: str) -> list[base.RemoteFile]:
            found = listed(folder, pattern)
            with server.imap(user) as client:  # a person deleting the mail meanwhile
                client.select("INBOX")
                client.uid("STORE", str(gone), "+FLAGS", "(\\Deleted)")
                client.expunge()
            return found

        transport.list_files = list_then_expunge  # type: ignore[method-assign]
        return transport

    connection = services.connection("Mailed calls")
    run = collect.pull(services.ingestor, services.box, connection, "manual", expunged_after_listing)

    assert run is not None and run.status is RunStatus.COMPLETED, run and run.reason
    files = {f.name: (f.state, f.message or "") for f in services.run_files(run.id)}
    assert files["calls_2.csv"][0] == "loaded"
    state, message = files["calls_1.csv"]
    assert state == "skipped" and "no longer in folder 'INBOX'" in message
    assert services.count_actions("Mailed calls") == 3
    [credential] = services.credentials("Mailed calls")
    assert credential.status == "Active" and credential.last_error is None
