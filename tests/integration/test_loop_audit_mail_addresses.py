"""Mail we send back goes to the address that was given, or to nobody with a line saying so.

Return and owner addresses are checked by a loose pattern (`x@y.z`), which lets through text a
To header reads as something else: `=?utf-8?q?cfo?=@acme.example` is decoded to
cfo@acme.example, `ops,cfo@acme.example` is two recipients, `ops@[acme.example` makes Python's
header parser raise. The outbox took the envelope recipient from the parsed header, so such a
partner's results went to another mailbox; and one owner address the parser cannot read
stopped the delivery check, so every other connection's alert of that pass was never mailed
(alerts are raised once). Against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace

import pytest
from helpers import call_csv
from helpers.clock import Clock
from smtp_server import Inbox, running_smtp

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import InvalidInputError, Services
from connectbatch.settings import Settings, SmtpSettings
from connectbatch.store import events as event_store
from connectbatch.store import outbox as outbox_store


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, SmtpSettings]]:
    with running_smtp("results@connectbatch.test") as running:
        yield running


@pytest.mark.parametrize(
    "address", ["=?utf-8?q?cfo?=@acme.example", "ops,cfo@acme.example", "ops@[acme.example"]
)
def test_results_never_go_to_a_mailbox_other_than_the_return_address(
    settings: Settings, smtp: tuple[Inbox, SmtpSettings], address: str
) -> None:
    inbox, server = smtp
    services = Services(replace(settings, smtp=server))
    draft = Connection(
        "Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH, return_email=address
    )
    services.create_connection(draft)

    run = services.ingest_bytes("Acme", "calls.csv", call_csv(2))
    services.outbox.send_due()

    assert inbox.messages == []  # cfo@acme.example (or "ops" and cfo@...) got nothing
    with services.db.connect() as con:
        [queued] = outbox_store.of_run(con, run.id)
        events = event_store.of_connection(con, queued.connection_id or 0)
    assert queued.state == "failed" and "one e-mail address" in (queued.last_error or "")
    [failed] = [e for e in events if e.kind == event_store.MAIL_FAILED]
    assert "acme.example" in failed.message and "results files stay in the outbound folder" in failed.message


class _Clock(Clock):
    """Starts tomorrow 00:00 UTC, after the connections exist, so their slots count."""

    def __init__(self) -> None:
        super().__init__()
        self.now = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.now += dt.timedelta(days=1)


def test_an_owner_address_no_header_can_carry_costs_no_other_connection_its_alert_mail(
    settings: Settings, smtp: tuple[Inbox, SmtpSettings]
) -> None:
    inbox, server = smtp
    clock = _Clock()
    day0 = clock.now
    services = Services(replace(settings, smtp=server), clock=clock)
    services.add_partner("Sloppy", "vendor", return_email="ops@[sloppy.example")  # the pattern lets it by
    services.add_partner("Tidy", "vendor")
    for name, partner, owner in (("First", "Sloppy", None), ("Second", "Tidy", "owner@ours.example")):
        services.create_connection(
            Connection(
                name, "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
                expect="daily by 06:00", expect_grace_minutes=60, owner_email=owner,
            ),
            partner=partner,
        )  # fmt: skip
    clock.now = day0 + dt.timedelta(hours=5)
    for name in ("First", "Second"):
        services.ingest_bytes(name, f"{name}.csv", call_csv(5, prefix=name))

    clock.now = day0 + dt.timedelta(days=1, hours=7, minutes=5)  # both late on day 1
    raised = services.check_deliveries()

    assert sorted(a.kind for a in raised) == ["late", "late"]
    assert [m["To"] for m in inbox.messages] == ["owner@ours.example"]
    notified = {c: [a.notified for a in services.delivery_alerts(c)] for c in ("First", "Second")}
    assert notified == {"First": [False], "Second": [True]}


@pytest.mark.parametrize(
    "address", ["ops@[ours.example", "ops,cfo@ours.example", "=?utf-8?q?x?=@ours.example"]
)
def test_an_owner_address_a_mail_header_would_read_otherwise_is_refused(
    services: Services, address: str
) -> None:
    draft = Connection(
        "Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
        expect="daily by 06:00", owner_email=address,
    )  # fmt: skip
    with pytest.raises(InvalidInputError, match="owner_email"):
        services.create_connection(draft)


def test_status_changes_wait_for_a_return_address_mail_can_reach_as_it_is(
    settings: Settings, smtp: tuple[Inbox, SmtpSettings]
) -> None:
    """Sent to the parsed header, the status file reached another mailbox and its rows were
    marked reported; refused, the rows were lost for the e-mail channel. Skipped, they wait."""
    inbox, server = smtp
    services = Services(replace(settings, smtp=server))
    draft = Connection(
        "Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
        return_email="=?utf-8?q?cfo?=@acme.example", sync_back=["email"],
    )  # fmt: skip
    acme, _ = services.create_connection(draft)
    services.ingest_bytes("Acme", "calls.csv", call_csv(2))
    services.outbox.send_due()

    done = services.sync_back_now("Acme")

    assert done.sent == [] and "not one e-mail address" in done.skipped["email"]
    services.outbox.send_due()
    assert inbox.messages == []
    assert services.sync_backs(acme.id) == []  # nothing marked reported: the rows wait


@pytest.mark.parametrize("address", ["ops@acme.example", "Ops<ops@acme.example>"])
def test_a_return_address_a_header_carries_as_it_is_still_gets_its_results(
    settings: Settings, address: str
) -> None:
    with running_smtp("results@connectbatch.test") as (inbox, server):
        services = Services(replace(settings, smtp=server))
        draft = Connection(
            "Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH, return_email=address
        )
        services.create_connection(draft)
        services.ingest_bytes("Acme", "calls.csv", call_csv(2))
        services.outbox.send_due()
    [message] = inbox.messages
    assert message["To"].addresses[0].addr_spec == address.rpartition("<")[2].rstrip(">")
