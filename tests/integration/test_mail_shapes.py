"""Real-world mail shapes on a real Dovecot, read by the e-mail push connection's pull: a
partner forwarding its vendor's report mail (as an attachment, also base64-encoded as some
mailers send it), and the shapes that already worked and must stay so (RFC 2231 long names,
inline CSVs, base64 without padding, fifty attachments, Outlook's winmail.dat)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import replace
from email.message import EmailMessage

import pytest
from dovecot import DovecotServer, MailUser, running_dovecot
from helpers import call_csv, tnef

from connectbatch.engine import Engine, MailboxSettings
from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import Services

Setup = Callable[[str], tuple[Services, Engine, str, MailUser]]


@pytest.fixture(scope="module")
def server() -> Iterator[DovecotServer]:
    with running_dovecot() as running:
        yield running


@pytest.fixture
def setup(server: DovecotServer, services: Services) -> Setup:
    def make(pattern: str) -> tuple[Services, Engine, str, MailUser]:
        box = server.add_user()
        svc = Services(replace(services.settings, inbound_mailbox=box.address))
        svc.create_connection(
            Connection(
                "Vendor A",
                "call_conversions",
                Direction.INBOUND,
                Method.EMAIL,
                Methodology.PUSH,
                pattern=pattern,
            )
        )
        engine = Engine(svc, MailboxSettings(server.host, server.port, box.username, box.password, "plain"))
        return svc, engine, svc.inbound_address(svc.connection("Vendor A")), box

    return make


def vendor_report(name: str = "calls_0301.csv", rows: int = 3) -> EmailMessage:
    report = EmailMessage()
    report["From"] = "noreply@calltracker.example"
    report["To"] = "ops@partner.example"
    report["Subject"] = "Your daily call report"
    report.set_content("Your report is attached.")
    report.add_attachment(call_csv(rows, prefix="fwd"), maintype="text", subtype="csv", filename=name)
    return report


def forward(to: str, inner: EmailMessage, *own: tuple[str, bytes]) -> EmailMessage:
    outer = EmailMessage()
    outer["From"] = "ops@partner.example"
    outer["To"] = to
    outer["Subject"] = "Fwd: Your daily call report"
    outer.set_content("forwarding the vendor's report")
    for name, data in own:
        outer.add_attachment(data, maintype="text", subtype="csv", filename=name)
    outer.add_attachment(inner)
    return outer


def files(svc: Services, run_id: int) -> list[tuple[str, str]]:
    return [(f.name, f.state) for f in svc.run_files(run_id)]


def test_a_forwarded_report_mail_gives_its_csv_not_an_eml_file(server: DovecotServer, setup: Setup) -> None:
    """The forwarded mail itself was a file, attachment-n.eml: a connection taking every
    attachment ("*") ingested it as a CSV and the run failed."""
    svc, engine, address, box = setup("*")
    server.append(box, forward(address, vendor_report()).as_bytes())

    [run] = engine.poll_mailbox()

    assert (run.status, run.rows_accepted) == (RunStatus.COMPLETED, 3)
    assert files(svc, run.id) == [("calls_0301.csv", "loaded")]
    assert "calls_0301.csv taken from the forwarded mail from noreply@calltracker.example" in (
        run.reason or ""
    )
    assert engine.poll_mailbox() == []


def test_a_base64_encoded_forwarded_mail_is_opened(server: DovecotServer, setup: Setup) -> None:
    """Some mailers send the forwarded message base64-encoded: its CSV was never found (the
    history said the mail had one attachment, report.eml, matching nothing)."""
    svc, engine, address, box = setup("calls_*.csv")
    inner = base64.encodebytes(vendor_report(rows=4).as_bytes()).replace(b"\n", b"\r\n")
    raw = (
        (
            f"From: ops@partner.example\r\nTo: {address}\r\nSubject: Fwd: report\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n'
            "--b0\r\nContent-Type: text/plain\r\n\r\nsee below\r\n"
            '--b0\r\nContent-Type: message/rfc822; name="report.eml"\r\n'
            'Content-Disposition: attachment; filename="report.eml"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n"
        ).encode()
        + inner
        + b"--b0--\r\n"
    )
    server.append(box, raw)

    [run] = engine.poll_mailbox()

    assert (run.status, run.rows_accepted) == (RunStatus.COMPLETED, 4)
    assert files(svc, run.id) == [("calls_0301.csv", "loaded")]


def test_a_forwarded_attachment_never_shares_a_name_nor_leaves_its_folder(
    server: DovecotServer, setup: Setup
) -> None:
    """The partner's own calls_0301.csv and the forwarded one of the same name were two files
    of one name in the run; a name with directories in it loses them, as the mail's own do."""
    svc, engine, address, box = setup("calls_*.csv")
    inner = vendor_report("calls_0301.csv", rows=2)
    inner.add_attachment(
        call_csv(5, prefix="trav"), maintype="text", subtype="csv", filename="../../etc/calls_x.csv"
    )
    server.append(box, forward(address, inner, ("calls_0301.csv", call_csv(1, prefix="own"))).as_bytes())

    [run] = engine.poll_mailbox()

    assert (run.status, run.rows_accepted) == (RunStatus.COMPLETED, 8)
    names = [name for name, _ in files(svc, run.id)]
    assert names[0] == "calls_0301.csv" and len(set(names)) == 3
    assert set(names[1:]) == {"calls_0301-2.csv", "calls_x.csv"}
    assert engine.poll_mailbox() == []


@pytest.mark.parametrize("pattern", ["*", "calls_*.csv"])
def test_a_winmail_dat_that_cannot_be_read_is_recorded_saying_what_the_sender_must_change(
    server: DovecotServer, setup: Setup, pattern: str
) -> None:
    """Outlook in Rich Text wraps the files in winmail.dat (TNEF): one that cannot be opened,
    taken as a CSV ("*"), failed the run on "a NUL byte ... is this a CSV file?"; otherwise the
    history said only that winmail.dat did not match the pattern. Neither told the partner
    what to change."""
    svc, engine, address, box = setup(pattern)
    server.append(box, tnef.mail(address, b"\x78\x9f\x3e\x22\x01\x00" + b"\x00" * 64).as_bytes())

    assert engine.poll_mailbox() == []  # no file, so no run
    assert svc.runs("Vendor A") == []
    [event] = svc.connection_events("Vendor A")
    assert event.kind == "mail_unmatched"
    assert "winmail.dat is Outlook's rich-text (TNEF) wrapper" in event.message
    assert "send the mail as HTML or plain text" in event.message
    assert engine.poll_mailbox() == [] and len(svc.connection_events("Vendor A")) == 1


@pytest.mark.parametrize("pattern", ["*", "calls_*.csv"])
def test_the_csvs_inside_outlooks_winmail_dat_are_taken(
    server: DovecotServer, setup: Setup, pattern: str
) -> None:
    """Outlook in Rich Text (or Exchange relaying it) sends the partner's CSVs inside
    winmail.dat: they were refused with a note asking for HTML or plain text; the partner
    saw its files attached in its own Sent folder. They are taken out and loaded, each
    saying where it came from."""
    svc, engine, address, box = setup(pattern)
    wrapper = tnef.winmail(
        [("calls_0301.csv", call_csv(3, prefix="w1")), ("calls_0302.csv", call_csv(2, prefix="w2"))]
    )
    server.append(box, tnef.mail(address, wrapper).as_bytes())

    [run] = engine.poll_mailbox()

    assert (run.status, run.rows_accepted) == (RunStatus.COMPLETED, 5)
    assert files(svc, run.id) == [("calls_0301.csv", "loaded"), ("calls_0302.csv", "loaded")]
    assert "calls_0301.csv taken from Outlook's winmail.dat" in (run.reason or "")
    assert engine.poll_mailbox() == []


@pytest.mark.parametrize("whole", [False, True])
def test_a_csv_sent_inline_without_a_name_is_taken(server: DovecotServer, setup: Setup, whole: bool) -> None:
    """A report tool sends the CSV as an inline text/csv part with no name (or as the whole
    mail): the screen did not even download it and the history said "no attachment"."""
    svc, engine, address, box = setup("*.csv")
    head = f"From: reports@tool.example\r\nTo: {address}\r\nSubject: daily\r\nMIME-Version: 1.0\r\n"
    data = call_csv(2, prefix="inline").replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if whole:
        raw = (head + "Content-Type: text/csv; charset=utf-8\r\n\r\n").encode() + data
    else:
        raw = (
            (
                head + 'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n'
                "--b0\r\nContent-Type: text/plain\r\n\r\ntoday's calls below\r\n"
                "--b0\r\nContent-Type: text/csv; charset=utf-8\r\nContent-Disposition: inline\r\n\r\n"
            ).encode()
            + data
            + b"\r\n--b0--\r\n"
        )
    server.append(box, raw)

    [run] = engine.poll_mailbox()

    assert (run.status, run.rows_accepted) == (RunStatus.COMPLETED, 2)
    assert files(svc, run.id) == [("attachment-1.csv", "loaded")]
    assert engine.poll_mailbox() == []


def test_the_note_names_a_forwarded_mail_in_utf_8_as_written(server: DovecotServer, setup: Setup) -> None:
    """A forwarded mail with raw UTF-8 headers (RFC 6532, message/global) was named with
    replacement characters: 'J\ufffd\ufffdrgen'."""
    _svc, engine, address, box = setup("calls_*.csv")
    inner = vendor_report()
    del inner["From"], inner["Subject"]
    inner["From"], inner["Subject"] = "Jürgen <j@calltracker.example>", "Bericht für März"
    raw = (
        (
            f"From: ops@partner.example\r\nTo: {address}\r\nSubject: Fwd\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n'
            "--b0\r\nContent-Type: text/plain\r\n\r\nfwd\r\n"
            "--b0\r\nContent-Type: message/global\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        ).encode()
        + inner.as_bytes(policy=inner.policy.clone(linesep="\r\n", utf8=True))
        + b"\r\n--b0--\r\n"
    )
    server.append(box, raw)

    [run] = engine.poll_mailbox()

    assert run.rows_accepted == 3
    assert "the forwarded mail from Jürgen <j@calltracker.example> 'Bericht für März'" in (run.reason or "")


def test_a_connection_whose_name_makes_a_utf_8_address_takes_its_mail(
    server: DovecotServer, services: Services
) -> None:
    """A connection named "Müller Media" from before addresses were made in ASCII (its tag not
    kept: its name's) has inbox+müller-media@...; a mail to it carries the address in raw
    UTF-8 (RFC 6532), which the screen read with replacement characters: the mail was never
    addressed to the connection and stayed in the mailbox, untaken, unsaid."""
    box = server.add_user()
    svc = Services(replace(services.settings, inbound_mailbox=box.address))
    svc.create_connection(
        Connection(
            "Müller Media",
            "call_conversions",
            Direction.INBOUND,
            Method.EMAIL,
            Methodology.PUSH,
            pattern="calls_*.csv",
        )
    )
    with svc.db.transaction() as con:
        con.execute("UPDATE connections SET mail_tag = NULL")
    address = svc.inbound_address(svc.connection("Müller Media"))
    assert "müller-media" in address
    message = EmailMessage()
    message["From"] = "ops@partner.example"
    message["To"] = address
    message["Subject"] = "calls"
    message.set_content("attached")
    message.add_attachment(call_csv(2, prefix="utf8"), maintype="text", subtype="csv", filename="calls_1.csv")
    server.append(box, message.as_bytes(policy=message.policy.clone(utf8=True)))
    engine = Engine(svc, MailboxSettings(server.host, server.port, box.username, box.password, "plain"))

    [run] = engine.poll_mailbox()

    assert (run.status, run.rows_accepted) == (RunStatus.COMPLETED, 2)
    assert engine.poll_mailbox() == []


def _raw(address: str, body: bytes, content_type: bytes = b'multipart/mixed; boundary="b0"') -> bytes:
    return (
        b"From: ops@partner.example\r\nTo: " + address.encode() + b"\r\nSubject: calls\r\n"
        b"Message-ID: <" + str(abs(hash(body))).encode() + b"@partner.example>\r\n"
        b"Date: Mon, 02 Mar 2026 09:30:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: " + content_type
        + b"\r\n\r\n" + body
    )  # fmt: skip


def _attached(name: str, payload: bytes, cte: bytes = b"base64") -> bytes:
    return (
        b"--b0\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename=" + name.encode()
        + b"\r\nContent-Transfer-Encoding: " + cte + b"\r\n\r\n" + payload + b"\r\n"
    )  # fmt: skip


def test_an_attachment_that_arrived_damaged_is_refused_saying_so(server: DovecotServer, setup: Setup) -> None:
    """A mail cut off before its closing boundary loaded the rows that arrived, and base64
    with stray characters loaded a changed value ("Boston" as "Bo"), both as Completed runs
    with no word; now each is refused, once, saying to send it again, and the mail beside
    them loads."""
    svc, engine, address, box = setup("calls_*.csv")
    good = base64.encodebytes(call_csv(3, prefix="ok"))
    cut = base64.encodebytes(call_csv(5, prefix="cut"))
    server.append(box, _raw(address, _attached("calls_cut.csv", cut[: len(cut) // 2])))  # no closing boundary
    server.append(box, _raw(address, _attached("calls_bad.csv", b"!!" + good[2:]) + b"--b0--\r\n"))
    server.append(box, _raw(address, _attached("calls_ok.csv", good) + b"--b0--\r\n"))

    runs = engine.poll_mailbox()
    assert [r.status for r in runs] == [RunStatus.COMPLETED] * len(runs)
    taken = [f for r in runs for f in svc.run_files(r.id)]
    states = {f.name: (f.state, f.message or "") for f in taken}
    assert states["calls_ok.csv"][0] == "loaded"
    for damaged in ("calls_cut.csv", "calls_bad.csv"):
        state, why = states[damaged]
        assert state == "skipped" and "arrived damaged" in why and "send it again" in why, why
    assert svc.count_actions("Vendor A") == 3
    assert engine.poll_mailbox() == []  # marked processed: neither is taken again


def test_a_mail_nested_too_deeply_to_read_costs_only_itself(server: DovecotServer, setup: Setup) -> None:
    """A 68 KB mail nested a thousand multipart levels deep failed every poll of the mailbox
    (Python's parser recursed past its limit) and held back the good mail beside it."""
    svc, engine, address, box = setup("calls_*.csv")
    body = b"Content-Type: text/csv\r\nContent-Disposition: attachment; filename=calls_deep.csv\r\n\r\n"
    body += call_csv(2, prefix="deep")
    for depth in range(1000):
        mark = b"n%d" % depth
        body = (
            b"Content-Type: multipart/mixed; boundary=" + mark + b"\r\n\r\n--" + mark + b"\r\n" + body
            + b"\r\n--" + mark + b"--\r\n"
        )  # fmt: skip
    head, _, rest = body.partition(b"\r\n\r\n")
    server.append(box, _raw(address, rest, head.split(b": ", 1)[1]))
    good = _attached("calls_ok.csv", base64.encodebytes(call_csv(2)))
    server.append(box, _raw(address, good + b"--b0--\r\n"))

    runs = engine.poll_mailbox()
    taken = {f.name: (f.state, f.message or "") for r in runs for f in svc.run_files(r.id)}
    assert taken["calls_ok.csv"][0] == "loaded"
    [(state, why)] = [v for k, v in taken.items() if k.startswith("message ")]
    assert state == "skipped" and "nested too deeply" in why, why
    assert svc.count_actions("Vendor A") == 2
    assert engine.poll_mailbox() == []
