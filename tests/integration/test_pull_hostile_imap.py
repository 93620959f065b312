"""A partner's mail server that tells one size and sends another, against a real socket: a
small hostile IMAP server (raw sockets) that screens a message as 900 bytes (RFC822.SIZE)
and then announces it as a 3 GB literal when it is downloaded.

The size screen believed the told size, and imaplib read the announced literal into memory
whole: a server could go around CONNECTBATCH_MAX_FILE_BYTES and exhaust the memory every
partner's pulls and the scheduler share (a 300 MB literal made the pull 435 MB larger). Now
a literal over the largest mail we take is refused before a byte of it is read; the mail is
recorded as too large, as if its size had been told honestly, and marked processed.

The same server can also answer SEARCH with untagged lines without end (`* OK xxxx...`), which
imaplib kept, every one, until the pull's deadline: an answer past the largest mail plus
`literals.ANSWER_MARGIN` now fails the run, saying so."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile import SocketServer

from connectbatch.models import Connection, Direction, Method, Methodology, Run, RunStatus
from connectbatch.services import CredentialInput, Services
from connectbatch.settings import Settings
from connectbatch.transfer.pull.imap.literals import ANSWER_MARGIN
from connectbatch.transfer.pull.imap.size import largest_message
from connectbatch.transfer.specs import ImapSecurity, ImapSpec

LIMIT = 4096  # files of up to 4 KB
ANNOUNCED = 3_000_000_000  # what the server says the message is when it sends it
CAP = 128 * 1024 * 1024  # what it really sends before it gives up: spares the test machine
USER, PASSWORD = "partner", "partner-secret"
HEADERS = b"From: Reports <reports@partner.example>\r\nTo: calls@example.test\r\nSubject: March\r\n\r\n"
STRUCTURE = (
    b'(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 5 1 NIL NIL NIL NIL)'
    b'("text" "csv" ("name" "Calls_1.csv") NIL NIL "base64" 100 2 NIL '
    b'("attachment" ("filename" "Calls_1.csv")) NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL)'
)


class SizeLyingImapServer(SocketServer):
    """One message, UID 1: 900 bytes when screened, ANNOUNCED bytes when downloaded; with
    `endless_search`, a SEARCH answered by untagged lines up to CAP bytes first."""

    def __init__(self, endless_search: bool = False) -> None:
        self.endless_search = endless_search
        self.sent = 0  # bytes of the literal written before the client hung up
        self.commands: list[str] = []
        super().__init__()

    def _session(self, client: socket.socket) -> None:
        with client, client.makefile("rb") as lines:
            client.sendall(b"* OK [CAPABILITY IMAP4rev1] hostile\r\n")
            for raw in lines:
                tag, _, command = raw.decode("latin-1").rstrip("\r\n").partition(" ")
                self.commands.append(command)
                done = tag.encode() + b" OK done\r\n"
                upper = command.upper()
                if upper.startswith("CAPABILITY"):
                    client.sendall(b"* CAPABILITY IMAP4rev1\r\n" + done)
                elif upper.startswith("SELECT"):
                    client.sendall(b"* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n" + done)
                elif upper.startswith("UID SEARCH"):
                    if self.endless_search and not self._flood(client, b"* OK " + b"x" * 100_000 + b"\r\n"):
                        return
                    client.sendall(b"* SEARCH 1\r\n" + done)
                elif upper.startswith("UID FETCH") and "HEADER.FIELDS" in upper:
                    client.sendall(
                        b'* 1 FETCH (UID 1 INTERNALDATE "01-Mar-2026 10:00:00 +0000" RFC822.SIZE 900 '
                        b"BODYSTRUCTURE " + STRUCTURE + b" BODY[HEADER.FIELDS (FROM)] {%d}\r\n" % len(HEADERS)
                        + HEADERS + b")\r\n" + done
                    )  # fmt: skip
                elif upper.startswith("UID FETCH") and "BODY.PEEK[]" in upper:
                    client.sendall(b"* 1 FETCH (UID 1 FLAGS () RFC822.SIZE 900 BODY[] {%d}\r\n" % ANNOUNCED)
                    self._flood(client, b"A" * 65536)
                    return
                elif upper.startswith("LOGOUT"):
                    client.sendall(b"* BYE\r\n" + done)
                    return
                else:  # LOGIN, UID STORE, NOOP...
                    client.sendall(done)

    def _flood(self, client: socket.socket, block: bytes) -> bool:
        """Send `block` until CAP bytes went; False when the client hung up first."""
        try:
            while self.sent < CAP:
                client.sendall(block)
                self.sent += len(block)
        except OSError:
            return False
        return True


@pytest.fixture
def imap_server() -> Iterator[SizeLyingImapServer]:
    server = SizeLyingImapServer()
    yield server
    server.close()


def pull_within(services: Services, name: str, seconds: float) -> Run:
    runs: list[Run] = []
    thread = threading.Thread(target=lambda: runs.append(services.pull(name)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the pull was still going after {seconds:g} s"
    [run] = runs
    return run


def mailbox(tmp_path: Path, server: SizeLyingImapServer) -> Services:
    services = Services(Settings(home=tmp_path / "home", lock_timeout=10.0, max_file_bytes=LIMIT))
    draft = Connection(
        "Lying mailbox", "call_conversions", Direction.INBOUND, Method.EMAIL, Methodology.PULL,
        host="127.0.0.1", port=server.port, folder="INBOX", pattern="Calls_*.csv",
        transfer=ImapSpec(security=ImapSecurity.PLAIN),
    )  # fmt: skip
    services.create_connection(draft, CredentialInput("partner", USER, PASSWORD))
    return services


def test_a_message_larger_than_the_server_said_is_never_read_and_is_recorded_as_too_large(
    imap_server: SizeLyingImapServer, tmp_path: Path
) -> None:
    services = mailbox(tmp_path, imap_server)

    pull_within(services, "Lying mailbox", 60)

    assert imap_server.sent < CAP // 4  # we hung up at the announcement, not after reading it
    [event] = services.connection_events("Lying mailbox")
    assert event.kind == "mail_too_large" and "reports@partner.example" in event.message
    assert f"{ANNOUNCED:,} bytes" in event.message  # the size it turned out to have
    assert f"{largest_message(LIMIT):,} bytes" in event.message
    assert any(c.upper().startswith("UID STORE 1 +FLAGS") for c in imap_server.commands)  # processed


def test_an_answer_without_end_fails_the_run(tmp_path: Path) -> None:
    server = SizeLyingImapServer(endless_search=True)
    services = mailbox(tmp_path, server)
    try:
        run = pull_within(services, "Lying mailbox", 60)
    finally:
        server.close()

    assert run.status is RunStatus.FAILED
    budget = largest_message(LIMIT) + ANSWER_MARGIN
    assert f"IMAP 127.0.0.1:{server.port}" in (run.reason or "")
    assert f"more than {budget:,} bytes in answer to one command" in (run.reason or "")
    assert server.sent < budget + CAP // 4  # we hung up once past the bound
