"""E-mail pull against a real Dovecot: which attachments are listed, what is fetched, how a
message is marked processed (and only once everything in it is done), the plus-address
filter, the MIME edge cases of the imap-tools corpus, hostile file names, TLS, and errors
a person can read.

One Dovecot per module (see `dovecot.py`); each test gets a mail user of its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import ssl
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from dovecot import DovecotServer, MailUser, free_port, running_dovecot
from helpers.shared import shared_path

from connectbatch.errors import ConfigurationError, TransportError
from connectbatch.transfer.base import Endpoint, RemoteFile, open_transport
from connectbatch.transfer.pull.imap import DEFAULT_FLAG, ImapTransport, _scrub, safe_filename
from connectbatch.transfer.specs import ImapSecurity, ImapSpec, check_spec

if TYPE_CHECKING:
    from connectbatch.services import Services

CORPUS = "corpora/imap_tools-emails"
SENT = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
CSV = b"CampaignId,EventDate\r\n1234,2026-03-01T14:05:09Z\r\n"

Attachment = tuple[str, bytes, str]  # file name, payload, content type
Connect = Callable[..., ImapTransport]


def build_message(
    *attachments: Attachment,
    subject: str = "Daily conversions",
    to: str = "inbox@example.test",
    cc: str | None = None,
    headers: dict[str, str] | None = None,
    sent: dt.datetime = SENT,
) -> bytes:
    """A partner's message: a short text body and the given attachments."""
    msg = EmailMessage()
    msg["From"] = "Partner Reports <reports@partner.example>"
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    for name, value in (headers or {}).items():
        msg[name] = value
    msg["Subject"] = subject
    msg["Date"] = format_datetime(sent)
    msg["Message-ID"] = make_msgid(domain="partner.example")
    msg.set_content("Files attached.\n")
    for name, payload, content_type in attachments:
        maintype, subtype = content_type.split("/")
        msg.add_attachment(payload, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes(policy=SMTP)


def raw_message(*disposition_params: str) -> bytes:
    """A message whose attachments' Content-Disposition parameters are written verbatim,
    for names that no well-behaved mailer would produce."""
    parts = [
        b"From: a@partner.example\r\nTo: inbox@example.test\r\nSubject: hostile\r\n"
        b"Date: Mon, 02 Mar 2026 09:30:00 +0000\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n'
        b"--b0\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
    ]
    for param in disposition_params:
        parts.append(
            b"--b0\r\nContent-Type: text/csv\r\n"
            + b"Content-Disposition: attachment; "
            + param.encode()
            + b"\r\n\r\n"
            + CSV
            + b"\r\n"  # the line break before a boundary belongs to the boundary
        )
    parts.append(b"--b0--\r\n")
    return b"".join(parts)


@pytest.fixture(scope="module")
def server() -> Iterator[DovecotServer]:
    with running_dovecot() as running:
        yield running


@pytest.fixture
def user(server: DovecotServer) -> MailUser:
    return server.add_user()


@pytest.fixture
def connect(server: DovecotServer, user: MailUser) -> Iterator[Connect]:
    """`connect(move_to="Done")` -> a transport for this test's user (plain IMAP on
    127.0.0.1 unless `security`/`port` say otherwise; `max_bytes` the file limit a run
    gives it, none by default), closed after the test."""
    opened: list[ImapTransport] = []

    def make(
        *, port: int | None = None, password: str | None = None, max_bytes: int | None = None, **settings: Any
    ) -> ImapTransport:
        settings.setdefault("security", "plain")
        endpoint = Endpoint(
            host=server.host,
            port=port or server.port,
            username=user.username,
            password=user.password if password is None else password,
            spec=ImapSpec(**settings),
            timeout=10.0,
            max_bytes=max_bytes,
        )
        transport = ImapTransport(endpoint)
        opened.append(transport)
        return transport

    yield make
    for transport in opened:
        transport.close()


def fetched(transport: ImapTransport, remote: RemoteFile, tmp_path: Path) -> bytes:
    target = tmp_path / "fetched" / remote.ref.replace(":", "-")
    transport.fetch(remote, target)
    return target.read_bytes()


# ------------------------------------------------------------------------ listing, fetching


def test_matching_attachments_are_listed_fetched_and_mail_stays_unread(
    server: DovecotServer, user: MailUser, connect: Connect, tmp_path: Path
) -> None:
    pdf = b"%PDF-1.4 not really"
    mixed = server.append(
        user,
        build_message(("Conversions_2026_03.csv", CSV, "text/csv"), ("invoice.pdf", pdf, "application/pdf")),
    )
    only_pdf = server.append(user, build_message(("invoice.pdf", pdf, "application/pdf")))
    plain = server.append(user, build_message())
    transport = connect()
    downloaded: list[int] = []
    real_message = transport._message

    def spy(folder: str, uid: int):  # type: ignore[no-untyped-def]
        downloaded.append(uid)
        return real_message(folder, uid)

    transport._message = spy  # type: ignore[method-assign]

    files = transport.list_files("", "Conversions_202?_*.csv")

    assert [f.name for f in files] == ["Conversions_2026_03.csv"]
    remote = files[0]
    assert remote.ref == f"{mixed}:0"
    assert remote.path == f"INBOX/{mixed}/1/Conversions_2026_03.csv"
    assert remote.size == len(CSV)
    assert remote.mtime == dt.datetime(2026, 3, 2, 14, 30, tzinfo=dt.UTC)
    assert remote.extra["subject"] == "Daily conversions"
    assert remote.extra["from"] == "reports@partner.example"
    assert remote.extra["message_id"].endswith("@partner.example>")
    assert remote.extra["date"] == "2026-03-02T14:30:00+00:00"
    assert remote.extra["uidvalidity"].isdigit()
    assert fetched(transport, remote, tmp_path) == CSV
    # the text-only message was judged by its BODYSTRUCTURE and never downloaded
    assert plain not in downloaded and set(downloaded) == {mixed, only_pdf}
    # listing and fetching change nothing on the server: no \Seen, no keyword
    for uid in (mixed, only_pdf, plain):
        assert server.flags(user, uid) <= {"\\Recent"}


def test_several_attachments_mark_the_message_only_after_the_last(
    server: DovecotServer, user: MailUser, connect: Connect, tmp_path: Path
) -> None:
    names = ["calls_1.csv", "calls_2.csv", "calls_3.csv"]
    payloads = [CSV + str(i).encode() for i in range(3)]
    uid = server.append(
        user,
        build_message(
            *[(n, p, "text/csv") for n, p in zip(names, payloads, strict=True)],
            ("readme.txt", b"hi", "text/plain"),
        ),
    )
    transport = connect()
    files = transport.list_files("INBOX", "calls_*.csv")
    assert [f.name for f in files] == names
    assert [f.ref for f in files] == [f"{uid}:0", f"{uid}:1", f"{uid}:2"]
    assert [fetched(transport, f, tmp_path) for f in files] == payloads

    transport.after_success(files[0], "leave", None)
    transport.after_success(files[2], "leave", None)
    assert DEFAULT_FLAG not in server.flags(user, uid)
    transport.after_success(files[1], "leave", None)
    assert DEFAULT_FLAG in server.flags(user, uid)
    assert "\\Seen" not in server.flags(user, uid)
    assert connect().list_files("", "*") == []


def test_already_processed_message_is_skipped(
    server: DovecotServer, user: MailUser, connect: Connect
) -> None:
    server.append(user, build_message(("old.csv", CSV, "text/csv")), flags=[DEFAULT_FLAG])
    fresh = server.append(user, build_message(("new.csv", CSV, "text/csv")))
    files = connect().list_files("", "*.csv")
    assert [(f.name, f.ref) for f in files] == [("new.csv", f"{fresh}:0")]


def test_flag_can_be_seen(server: DovecotServer, user: MailUser, connect: Connect) -> None:
    server.append(user, build_message(("read.csv", CSV, "text/csv")), flags=["\\Seen"])
    unread = server.append(user, build_message(("unread.csv", CSV, "text/csv")))
    transport = connect(processed_flag="\\Seen")
    files = transport.list_files("", "*.csv")
    assert [f.name for f in files] == ["unread.csv"]
    transport.after_success(files[0], "leave", None)
    assert "\\Seen" in server.flags(user, unread)
    assert connect(processed_flag="\\Seen").list_files("", "*.csv") == []


def test_move_to_processed_folder_creates_it(server: DovecotServer, user: MailUser, connect: Connect) -> None:
    uid = server.append(user, build_message(("a.csv", CSV, "text/csv"), ("b.csv", CSV, "text/csv")))
    keep = server.append(user, build_message(("notes.pdf", b"%PDF", "application/pdf")))
    transport = connect(move_to="Processed/ConnectBatch")
    files = transport.list_files("", "*.csv")
    assert len(files) == 2
    transport.after_success(files[0], "leave", None)
    assert server.uids(user, "INBOX") == [uid, keep]  # one attachment still open
    transport.after_success(files[1], "leave", None)
    assert server.uids(user, "INBOX") == [keep]  # no matching attachment: untouched
    assert len(server.uids(user, "Processed/ConnectBatch")) == 1
    assert "Processed/ConnectBatch" in server.folders(user)
    assert connect(move_to="Processed/ConnectBatch").list_files("", "*.csv") == []


def test_move_without_move_capability_expunges_only_that_message(
    server: DovecotServer, user: MailUser, connect: Connect
) -> None:
    """Servers without MOVE: COPY, then \\Deleted + keyword, then UID EXPUNGE of that UID
    only, so a message someone else marked deleted is not expunged behind their back."""
    other = server.append(user, build_message(), flags=["\\Deleted"])
    uid = server.append(user, build_message(("a.csv", CSV, "text/csv")))
    transport = connect(move_to="Done")
    (remote,) = transport.list_files("", "*.csv")
    transport._capabilities.discard("MOVE")
    transport.after_success(remote, "leave", None)
    assert server.uids(user, "INBOX") == [other]
    assert len(server.uids(user, "Done")) == 1
    assert uid not in server.uids(user, "INBOX")


def test_archive_action_moves_when_no_processed_option(
    server: DovecotServer, user: MailUser, connect: Connect
) -> None:
    server.append(user, build_message(("a.csv", CSV, "text/csv")), folder="Partner")
    transport = connect()
    (remote,) = transport.list_files("/Partner", "*.csv")
    assert remote.extra["folder"] == "Partner"
    transport.after_success(remote, "archive", "/Done")
    assert server.uids(user, "Partner") == []
    assert len(server.uids(user, "Done")) == 1


def test_a_message_is_archived_when_one_file_was_taken_even_if_a_refused_one_is_confirmed_last(
    server: DovecotServer, user: MailUser, connect: Connect
) -> None:
    server.append(user, build_message(("a.csv", CSV, "text/csv"), ("b.csv", b"%PDF", "text/csv")))
    transport = connect()
    taken, refused = transport.list_files("", "*.csv")
    transport.after_success(taken, "archive", "Done")
    transport.after_success(refused, "leave", None)  # collect confirms a refused file so
    assert server.uids(user, "INBOX") == [] and len(server.uids(user, "Done")) == 1


def test_another_instance_completes_from_the_listed_record(
    server: DovecotServer, user: MailUser, connect: Connect
) -> None:
    """A run that lists with one transport and confirms with another still waits for all."""
    uid = server.append(user, build_message(("a.csv", CSV, "text/csv"), ("b.csv", CSV, "text/csv")))
    first, second = connect().list_files("", "*.csv")
    later = connect()
    later.after_success(first, "leave", None)
    assert DEFAULT_FLAG not in server.flags(user, uid)
    later.after_success(second, "leave", None)
    assert DEFAULT_FLAG in server.flags(user, uid)


def test_finish_message_marks_at_once(server: DovecotServer, user: MailUser, connect: Connect) -> None:
    uid = server.append(user, build_message(("a.csv", CSV, "text/csv"), ("b.csv", CSV, "text/csv")))
    transport = connect()
    assert len(transport.list_files("", "*.csv")) == 2
    transport.finish_message(uid)
    assert DEFAULT_FLAG in server.flags(user, uid)


def test_recipient_filter_takes_only_that_plus_address(
    server: DovecotServer, user: MailUser, connect: Connect
) -> None:
    address = "inbox+acme@example.test"
    wanted = [
        server.append(user, build_message(("to.csv", CSV, "text/csv"), to=address)),
        server.append(
            user,
            build_message(("cc.csv", CSV, "text/csv"), to="x@example.test", cc=f"Acme <{address}>"),
        ),
        server.append(
            user,
            build_message(
                ("bcc.csv", CSV, "text/csv"),
                to="undisclosed-recipients:;",
                headers={"Delivered-To": address.upper()},
            ),
        ),
        server.append(
            user,
            build_message(
                ("orig.csv", CSV, "text/csv"),
                to="list@example.test",
                headers={"X-Original-To": address},
            ),
        ),
    ]
    # a longer address that contains ours (SEARCH matches substrings), and other connections
    server.append(user, build_message(("x.csv", CSV, "text/csv"), to="xinbox+acme@example.test"))
    server.append(user, build_message(("y.csv", CSV, "text/csv"), to="inbox+acme2@example.test"))
    server.append(user, build_message(("z.csv", CSV, "text/csv"), to="inbox@example.test"))

    files = connect(recipient=address).list_files("", "*.csv")
    assert [f.name for f in files] == ["to.csv", "cc.csv", "bcc.csv", "orig.csv"]
    assert [int(f.extra["uid"]) for f in files] == wanted
    assert len(connect().list_files("", "*.csv")) == 7


# --------------------------------------------------------------------------- MIME edge cases


def test_every_corpus_message_lists_the_expected_attachments(
    server: DovecotServer, user: MailUser, connect: Connect, tmp_path: Path
) -> None:
    corpus = shared_path(CORPUS)
    expected = json.loads((corpus / "expected_parse.json").read_text(encoding="utf-8"))
    emls = sorted((corpus / "eml").glob("*.eml"))
    assert len(emls) >= 20
    uid_to_name = {server.append(user, eml.read_bytes()): eml.name for eml in emls}
    transport = connect()

    files = transport.list_files("", "*")

    listed: dict[str, list[RemoteFile]] = {name: [] for name in uid_to_name.values()}
    for remote in files:
        listed[uid_to_name[int(remote.extra["uid"])]].append(remote)
    checked = 0
    for eml_name, remotes in listed.items():
        # a forwarded mail (message/rfc822) is no file: its own attachments are (imap-tools
        # lists both), see test_mail_shapes
        wanted = [a for a in expected[eml_name]["attachments"] if a["content_type"] != "message/rfc822"]
        assert [r.name for r in remotes] == [
            safe_filename(a["filename"], i, a["content_type"]) for i, a in enumerate(wanted)
        ], eml_name
        assert [r.size for r in remotes] == [a["payload_len"] for a in wanted], eml_name
        assert [r.extra["content_type"] for r in remotes] == [a["content_type"] for a in wanted]
        for remote, attachment in zip(remotes, wanted, strict=True):
            payload = fetched(transport, remote, tmp_path)
            assert hashlib.sha256(payload).hexdigest() == attachment["payload_sha256"], eml_name
            checked += 1
        assert all(r.mtime is None or r.mtime.tzinfo == dt.UTC for r in remotes)
    assert checked == sum(
        len([a for a in v["attachments"] if a["content_type"] != "message/rfc822"])
        for k, v in expected.items()
        if k in listed
    )
    assert listed["forwarded_message.eml"] == []  # a forwarded mail with no attachment
    [pdf] = listed["attachment_emails__attachment_message_rfc822.eml"]
    assert pdf.name == "broken.pdf" and pdf.extra["forwarded"].startswith("the forwarded mail from ")
    assert {r.name for r in listed["multi_charset__japanese_attachment.eml"]} == {"てすと.txt"}

    # a pattern for a name only found through RFC 2231 continuations finds just that one
    only = connect().list_files("", "かきくけこ*.txt")
    assert [uid_to_name[int(r.extra["uid"])] for r in only] == [
        "multi_charset__japanese_attachment_long_name.eml"
    ]


def test_a_csv_attached_without_a_name_is_taken_as_attachment_n(
    server: DovecotServer, user: MailUser, connect: Connect, tmp_path: Path
) -> None:
    """`Content-Disposition: attachment` with no file name (some mailers and scripts): imap-tools
    skips such a part, so the history said the mail had no attachment and its rows were lost."""
    uid = server.append(
        user,
        b"From: a@partner.example\r\nTo: inbox@example.test\r\nSubject: calls\r\n"
        b"Date: Mon, 02 Mar 2026 09:30:00 +0000\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n'
        b"--b0\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"--b0\r\nContent-Type: text/csv\r\nContent-Disposition: attachment\r\n\r\n" + CSV + b"\r\n"
        b"--b0--\r\n",
    )
    transport = connect()
    [remote] = transport.list_files("", "*.csv")
    assert (remote.name, remote.ref) == ("attachment-1.csv", f"{uid}:0")
    assert fetched(transport, remote, tmp_path).strip() == CSV.strip()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd.csv", "passwd.csv"),
        ("..\\..\\Windows\\evil.csv", "evil.csv"),
        ("/abs/path/report.csv", "report.csv"),
        ("a\x00b\r\nc\x1b[31m.csv", "abc[31m.csv"),
        ("\u202egnp.csv", "gnp.csv"),
        ("..", "attachment-3.csv"),
        ("  .hidden.csv. ", "hidden.csv"),
        ("", "attachment-3.csv"),
        ("x" * 300 + ".csv", "x" * 251 + ".csv"),
        ("ciële.csv", "ciële.csv"),
    ],
)
def test_safe_filename(raw: str, expected: str) -> None:
    assert safe_filename(raw, 2, "text/csv") == expected


def test_hostile_attachment_names_are_sanitised(
    server: DovecotServer, user: MailUser, connect: Connect, tmp_path: Path
) -> None:
    server.append(
        user,
        raw_message(
            'filename="../../etc/passwd.csv"',
            "filename*=utf-8''%2E%2E%2F%2E%2E%2Froot%2F.ssh%2Fkeys.csv",
            'filename="=?utf-8?q?..=5C..=5Cwin=5Cevil=0D=0A.csv?="',
            "filename*=utf-8''%E2%80%AEvsc.csv",
            'filename=".."',
        ),
    )
    transport = connect()
    files = transport.list_files("", "*")
    names = [f.name for f in files]
    assert names == ["passwd.csv", "keys.csv", "evil.csv", "vsc.csv", "attachment-5.csv"]
    for remote in files:
        assert "/" not in remote.name and "\\" not in remote.name
        assert fetched(transport, remote, tmp_path) == CSV
    assert sorted(p.name for p in (tmp_path / "fetched").iterdir()) == sorted(
        f.ref.replace(":", "-") for f in files
    )


# --------------------------------------------------------------------------- TLS and errors


def test_implicit_tls_with_self_signed_certificate(
    server: DovecotServer, user: MailUser, connect: Connect
) -> None:
    server.append(user, build_message(("a.csv", CSV, "text/csv")))
    unverified = connect(security="ssl", port=server.ssl_port, verify=False)
    assert [f.name for f in unverified.list_files("", "*.csv")] == ["a.csv"]
    pinned = connect(security="ssl", port=server.ssl_port, ca_file=str(server.cert_file))
    assert [f.name for f in pinned.list_files("", "*.csv")] == ["a.csv"]
    with pytest.raises(TransportError, match=r"certificate was not accepted: .*ca_file") as caught:
        connect(security="ssl", port=server.ssl_port).list_files("", "*.csv")
    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)


def test_starttls(server: DovecotServer, user: MailUser, connect: Connect) -> None:
    server.append(user, build_message(("a.csv", CSV, "text/csv")))
    transport = connect(security="starttls", verify=False)
    assert [f.name for f in transport.list_files("", "*.csv")] == ["a.csv"]
    with pytest.raises(TransportError, match=r"certificate was not accepted: .*ca_file"):
        connect(security="starttls").list_files("", "*.csv")


def test_wrong_password_is_readable_and_secret(
    server: DovecotServer, user: MailUser, connect: Connect
) -> None:
    wrong = "Wr0ng-Secret-Value"
    with pytest.raises(TransportError) as caught:
        connect(password=wrong).list_files("", "*")
    text = str(caught.value)
    assert f"login as {user.username!r} failed" in text
    assert "Authentication failed" in text
    assert f"127.0.0.1:{server.port}" in text
    assert wrong not in text and user.password not in text


def test_closed_port_and_missing_folder(connect: Connect) -> None:
    refused = r"connection refused: is an IMAP server listening on 127\.0\.0\.1:\d+\?"
    with pytest.raises(TransportError, match=refused):
        connect(port=free_port()).list_files("", "*")
    with pytest.raises(TransportError, match="cannot open folder 'Nope'"):
        connect().list_files("Nope", "*")


def test_utf8_password(server: DovecotServer, connect: Connect) -> None:
    """LOGIN is ASCII-only; a non-ASCII password goes through AUTHENTICATE PLAIN."""
    account = server.add_user(username="utf8user", password="pässwörd-ü")
    server.append(account, build_message(("a.csv", CSV, "text/csv")))
    endpoint = Endpoint(
        host=server.host,
        port=server.port,
        username=account.username,
        password=account.password,
        spec=ImapSpec(security=ImapSecurity.PLAIN),
    )
    with ImapTransport(endpoint) as transport:
        assert [f.name for f in transport.list_files("", "*.csv")] == ["a.csv"]


def test_fetch_of_a_message_gone_meanwhile(
    server: DovecotServer, user: MailUser, connect: Connect, tmp_path: Path
) -> None:
    server.append(user, build_message(("a.csv", CSV, "text/csv")))
    (remote,) = connect().list_files("", "*.csv")
    connect(move_to="Elsewhere").finish_message(int(remote.extra["uid"]))
    with pytest.raises(TransportError, match="no longer in folder 'INBOX'"):
        connect().fetch(remote, tmp_path / "a.csv")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"security": "tls13"}, "'tls13' is not one of ssl, starttls, plain"),
        ({"move_to": "Done*"}, "control characters"),
        ({"processed_flag": "bad flag"}, "processed_flag"),
        ({"recipient": "not-an-address"}, "not an e-mail address"),
        ({"verify": "maybe"}, "not true or false"),
    ],
)
def test_bad_settings_fail_up_front(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ImapTransport(Endpoint(host="mail.partner.example", spec=ImapSpec(**settings)))


def test_mailbox_folder_with_wildcards_is_refused(connect: Connect) -> None:
    with pytest.raises(ConfigurationError, match="control characters"):
        connect().list_files("IN*", "*")


def test_plain_imap_to_a_remote_host_is_refused_for_partner_connections() -> None:
    with pytest.raises(ConfigurationError, match="unencrypted"):
        check_spec(ImapSpec(security=ImapSecurity.PLAIN), "mail.partner.example")
    assert check_spec(ImapSpec(security=ImapSecurity.PLAIN), "127.0.0.1") == ImapSpec(
        security=ImapSecurity.PLAIN
    )


def test_registered_as_email() -> None:
    plain = ImapSpec(security=ImapSecurity.PLAIN)
    transport = open_transport("email", Endpoint(host="127.0.0.1", spec=plain))
    assert isinstance(transport, ImapTransport)


@pytest.mark.parametrize(
    ("secret", "text", "expected"),
    [
        ("Sup3r-secret", "NO bad password Sup3r-secret given", "NO bad password *** given"),
        ("p", "plain port: p rejected", "plain port: *** rejected"),
        (None, "unchanged", "unchanged"),
    ],
)
def test_password_is_scrubbed_from_server_text(secret: str | None, text: str, expected: str) -> None:
    assert _scrub(text, secret) == expected


# --- silent mail (issue 11, defect 10) on an IMAP pull connection -------------------------------


def mailed_calls(services: Services, server: DovecotServer, user: MailUser) -> None:
    """The IMAP pull connection "Mailed calls" (pattern calls_*.csv) on `user`'s mailbox."""
    from connectbatch.models import Connection, Direction, Method, Methodology
    from connectbatch.services import CredentialInput

    draft = Connection(
        "Mailed calls", "call_conversions", Direction.INBOUND, Method.EMAIL, Methodology.PULL,
        host=server.host, port=server.port, pattern="calls_*.csv",
        transfer=ImapSpec(security=ImapSecurity.PLAIN),
    )  # fmt: skip
    services.create_connection(draft, CredentialInput("partner", user.username, user.password))


def test_a_pulled_mail_that_brings_nothing_is_in_the_history_once_and_the_zip_inside_matches(
    server: DovecotServer, user: MailUser, tmp_path: Path
) -> None:
    import gzip
    import io
    import zipfile

    from helpers import call_csv

    from connectbatch.models import RunStatus
    from connectbatch.services import Services
    from connectbatch.settings import Settings

    services = Services(Settings(home=tmp_path / "home", lock_timeout=10.0))  # no SMTP: recorded only
    mailed_calls(services, server, user)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("calls_1.csv", call_csv(3, prefix="zip"))
    server.append(user, build_message(("calls_1.csv.zip", buffer.getvalue(), "application/zip")))
    gzipped = gzip.compress(call_csv(2, prefix="gz"))
    server.append(user, build_message(("calls_2.csv.gz", gzipped, "application/gzip")))
    server.append(user, build_message(("summary.pdf", b"%PDF-1.4", "application/pdf"), subject="wrong file"))
    server.append(user, build_message(subject="no file today"))

    first = services.pull("Mailed calls")
    assert first.status is RunStatus.COMPLETED and (first.files_loaded, first.rows_accepted) == (2, 5)
    events = services.connection_events("Mailed calls")
    assert sorted(e.kind for e in events) == ["mail_unmatched", "mail_unmatched"]
    messages = " | ".join(e.message for e in events)
    assert "summary.pdf" in messages and "no attachment" in messages and "calls_*.csv" in messages
    assert all("not answered: no SMTP server configured" in e.message for e in events)

    second = services.pull("Mailed calls")  # every message marked: nothing again, nothing new
    assert second.files_seen == 0 and len(services.connection_events("Mailed calls")) == 2


# --- a message too large to download (CONNECTBATCH_MAX_FILE_BYTES) ----------------------------

SMALL_LIMIT = 4096  # files of up to 4 KB: a message of a few hundred KB is "huge"


def huge_message(subject: str = "March, all of it") -> bytes:
    """A partner's message far over what a 4 KB file could make (one ~400 KB attachment)."""
    rows = b"".join(b"%d,2026-03-01T14:05:09Z\r\n" % i for i in range(16_000))
    return build_message(("calls_all.csv", b"CampaignId,EventDate\r\n" + rows, "text/csv"), subject=subject)


def test_a_pulled_message_over_the_size_limit_is_recorded_once_and_never_downloaded(
    server: DovecotServer, user: MailUser, tmp_path: Path
) -> None:
    from dovecot import imap_bytes_read
    from helpers import call_csv

    from connectbatch.models import RunStatus
    from connectbatch.services import Services
    from connectbatch.settings import Settings
    from connectbatch.transfer.pull.imap.size import largest_message

    settings = Settings(home=tmp_path / "home", lock_timeout=10.0, max_file_bytes=SMALL_LIMIT)
    services = Services(settings)
    mailed_calls(services, server, user)
    huge = huge_message(subject="March\x1b[2J, all of it")
    assert len(huge) > 2 * largest_message(SMALL_LIMIT)  # well over the limit
    huge_uid = server.append(user, huge)
    server.append(user, build_message(("calls_1.csv", call_csv(3, prefix="ok"), "text/csv")))

    with imap_bytes_read() as first_read:
        first = services.pull("Mailed calls")

    assert first.status is RunStatus.COMPLETED and (first.files_loaded, first.rows_accepted) == (1, 3)
    assert first_read.total < len(huge) // 4  # the small message, headers and sizes only
    [event] = services.connection_events("Mailed calls")
    assert event.kind == "mail_too_large" and event.count == 1
    assert "reports@partner.example" in event.message and "March" in event.message
    assert "\x1b" not in event.message  # partner bytes cut to one clean line
    assert f"{len(huge):,} bytes" in event.message  # the size the server told (RFC822.SIZE)
    assert f"{largest_message(SMALL_LIMIT):,} bytes" in event.message and f"{SMALL_LIMIT:,}" in event.message
    assert "CampaignId" not in event.message  # never a word of the body

    with imap_bytes_read() as second_read:
        second = services.pull("Mailed calls")

    assert second.files_seen == 0 and second_read.total < len(huge) // 4
    assert len(services.connection_events("Mailed calls")) == 1  # said once
    assert huge_uid in server.uids(user)  # left in the mailbox, unread, marked processed
    assert "\\Seen" not in server.flags(user, huge_uid) and DEFAULT_FLAG in server.flags(user, huge_uid)


def test_a_transport_lists_a_message_over_the_limit_as_too_large_without_downloading_it(
    server: DovecotServer, user: MailUser, connect: Connect, tmp_path: Path
) -> None:
    from dovecot import imap_bytes_read

    from connectbatch.errors import RemoteFileTooLargeError
    from connectbatch.pipeline.history import TOO_LARGE

    huge = huge_message()
    uid = server.append(user, huge)
    listed_without_limit = connect().list_files("", "calls_*.csv")  # as before a lower limit
    [remote] = listed_without_limit

    limited = connect(max_bytes=SMALL_LIMIT)
    with imap_bytes_read() as read:
        assert limited.list_files("", "calls_*.csv") == []
        [stand_in] = limited.unmatched
        # a file listed by another instance (before the limit was lowered) is checked first
        with pytest.raises(RemoteFileTooLargeError, match=f"{len(huge):,} bytes"):
            fetched(connect(max_bytes=SMALL_LIMIT), remote, tmp_path)

    assert read.largest < 4096 and read.total < len(huge) // 10
    assert stand_in.extra[TOO_LARGE].startswith(f"the message is {len(huge):,} bytes")
    assert stand_in.extra["from"] == "Partner Reports <reports@partner.example>"
    assert stand_in.extra["uid"] == str(uid) and server.flags(user, uid) == set()


# --- a mail whose file is refused (wrong type, over the file limit) ----------------------------


def unflag(server: DovecotServer, user: MailUser, uid: int) -> None:
    """As a release before the fix left such a mail: never marked processed."""
    with server.imap(user) as imap:
        imap.select("INBOX")
        imap.uid("STORE", str(uid), "-FLAGS", f"({DEFAULT_FLAG})")


def test_a_mail_whose_file_is_refused_is_recorded_once_marked_and_never_downloaded_again(
    server: DovecotServer, user: MailUser, tmp_path: Path
) -> None:
    from dovecot import imap_bytes_read
    from helpers import call_csv

    from connectbatch.models import FileState, RunStatus
    from connectbatch.services import Services
    from connectbatch.settings import Settings

    services = Services(Settings(home=tmp_path / "home", lock_timeout=10.0, max_file_bytes=SMALL_LIMIT))
    mailed_calls(services, server, user)
    pdf = server.append(user, build_message(("calls_1.csv", b"%PDF-1.4\x00\x01 a report", "application/pdf")))
    big = call_csv(200, prefix="big")  # over the 4 KB file limit, in a message small enough to read
    assert len(big) > SMALL_LIMIT
    over = server.append(user, build_message(("calls_2.csv", big, "text/csv")))
    both = server.append(
        user,
        build_message(
            ("calls_3.csv", b"%PDF-1.4 again", "application/pdf"), ("calls_4.csv", call_csv(2), "text/csv")
        ),
    )
    connection_id = services.connection("Mailed calls").id

    first = services.scheduled_pull(connection_id)

    assert first is not None and first.status is RunStatus.FAILED and first.files_loaded == 1
    assert "PDF" in (first.reason or "")
    states = {f.name: (f.state, f.message or "") for f in services.run_files(first.id)}
    assert states["calls_1.csv"][0] is FileState.REJECTED and states["calls_3.csv"][0] is FileState.REJECTED
    assert states["calls_2.csv"][0] is FileState.SKIPPED and "4,096 bytes" in states["calls_2.csv"][1]
    assert states["calls_4.csv"][0] is FileState.LOADED
    for uid in (pdf, over, both):  # handled: marked processed, left unread
        assert DEFAULT_FLAG in server.flags(user, uid) and "\\Seen" not in server.flags(user, uid)

    with imap_bytes_read() as read:
        assert services.scheduled_pull(connection_id) is None  # no new run, no new alert
    assert read.total < len(big)  # one SEARCH: nothing downloaded again
    unflag(server, user, pdf)  # a mail an earlier release rejected and left unmarked
    unflag(server, user, over)
    assert services.scheduled_pull(connection_id) is None and services.pull(connection_id).files_seen == 0
    assert [r.id for r in services.runs("Mailed calls")][-1] == first.id  # still in the history
    assert DEFAULT_FLAG in server.flags(user, pdf) and DEFAULT_FLAG in server.flags(user, over)


def test_a_mail_whose_sender_address_holds_a_line_break_is_recorded_not_answered_and_the_run_goes_on(
    server: DovecotServer, user: MailUser, tmp_path: Path
) -> None:
    """A quoted local part may fold over a line ("q\\<CRLF> x"@...): the answer's To header
    then held a line break, the e-mail package raised ValueError and the pull crashed."""
    from helpers import call_csv
    from smtp_server import running_smtp

    from connectbatch.models import RunStatus
    from connectbatch.services import Services
    from connectbatch.settings import Settings

    hostile = (
        b'From: <"q\\\r\n x"@partner.example>\r\nTo: inbox@example.test\r\nSubject: no file\r\n'
        b"Message-ID: <crlf@partner.example>\r\nDate: Mon, 02 Mar 2026 09:30:00 +0000\r\n\r\nhello\r\n"
    )
    with running_smtp() as (inbox, smtp):
        services = Services(Settings(home=tmp_path / "home", lock_timeout=10.0, smtp=smtp))
        mailed_calls(services, server, user)
        uid = server.append(user, hostile)
        server.append(user, build_message(("calls_1.csv", call_csv(2, prefix="after"), "text/csv")))

        run = services.pull("Mailed calls")

    assert run.status is RunStatus.COMPLETED and run.files_loaded == 1
    [event] = services.connection_events("Mailed calls")
    assert "not answered: no single address to answer" in event.message
    assert inbox.messages == [] and DEFAULT_FLAG in server.flags(user, uid)


@pytest.mark.parametrize("allowed", [(), ("reports@partner.example",)], ids=["anyone", "allowed senders"])
def test_a_pull_answers_only_the_senders_its_connection_names(
    server: DovecotServer, user: MailUser, tmp_path: Path, allowed: tuple[str, ...]
) -> None:
    """Found by an e-mail audit: a pull reads the partner's own mailbox, where colleagues and
    newsletters write too, and each mail without a file was answered "nothing taken from
    your mail". Only a sender the connection names (allowed senders) is answered now."""
    from dataclasses import replace

    from smtp_server import running_smtp

    from connectbatch.services import Services
    from connectbatch.settings import Settings

    with running_smtp() as (inbox, smtp):
        services = Services(Settings(home=tmp_path / "home", lock_timeout=10.0, smtp=smtp))
        mailed_calls(services, server, user)
        if allowed:
            spec = services.connection("Mailed calls").transfer
            services.update_connection("Mailed calls", transfer=replace(spec, allowed_senders=allowed))
        server.append(user, build_message(subject="lunch?"))

        services.pull("Mailed calls")

    [event] = services.connection_events("Mailed calls")
    if allowed:
        assert event.answered and len(inbox.messages) == 1
    else:
        assert not event.answered and inbox.messages == []
        assert "not answered: a mail in the partner's own mailbox" in event.message


def test_a_mail_whose_batch_a_reviewer_discarded_is_not_taken_again(
    server: DovecotServer, user: MailUser, tmp_path: Path
) -> None:
    """A discarded file was no longer 'taken before': the next poll loaded the same mail
    again and held it for review again, undoing the reviewer's decision, on every discard."""
    from helpers import call_csv

    from connectbatch.models import FileState, ReviewState
    from connectbatch.services import Services
    from connectbatch.settings import Settings

    services = Services(Settings(home=tmp_path / "home", lock_timeout=10.0))
    mailed_calls(services, server, user)
    negative = call_csv(20, prefix="neg", overrides={0: {"SaleAmount": "-1"}})
    uid = server.append(user, build_message(("calls_1.csv", negative, "text/csv")))
    connection_id = services.connection("Mailed calls").id
    held = services.scheduled_pull(connection_id)
    assert held is not None and held.review is ReviewState.QUARANTINED

    services.discard(held.id, note="broken export", actor="bob")

    assert services.scheduled_pull(connection_id) is None and services.quarantined() == []
    assert [r.id for r in services.runs("Mailed calls")] == [held.id]
    assert services.run_files(held.id)[0].state is FileState.DISCARDED
    assert DEFAULT_FLAG in server.flags(user, uid)  # settled: not downloaded on every poll
