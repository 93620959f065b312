"""Expected delivery (issue 12, part 5) on a controllable clock, no sleeps: a late file raises
one alert (banner list, history line, e-mail to the owner through a real SMTP server) that
clears when the file arrives; a cadence is learned from 10 daily arrivals; a file far from the
usual row count raises a volume-drift alert, cleared by the next file back in range; a file
with many more rejects than usual raises a reject spike."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from helpers import call_csv
from helpers.clock import Clock as HandClock
from helpers.ports import free_port
from smtp_server import Inbox, running_smtp, use_smtp

from connectbatch.delivery import check as delivery_check
from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import InvalidInputError, Services
from connectbatch.settings import Settings, SmtpSettings


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with running_smtp("alerts@connectbatch.test") as (handler, smtp):
        use_smtp(monkeypatch, smtp)
        yield handler


class Clock:
    """The pipeline's clock, moved by the test: starts tomorrow 00:00 UTC (after the
    connection is created, so its slots count; event dates in the files stay valid)."""

    def __init__(self) -> None:
        today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.day0 = today + dt.timedelta(days=1)
        self.now = self.day0

    def at(self, day: int, hour: int, minute: int = 0) -> dt.datetime:
        self.now = self.day0 + dt.timedelta(days=day, hours=hour, minutes=minute)
        return self.now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def watched(settings: Settings, clock: Clock) -> Callable[..., tuple[Services, Connection]]:
    def make(smtp: SmtpSettings | None = None, **attrs: object) -> tuple[Services, Connection]:
        services = Services(replace(settings, smtp=smtp), clock=clock)
        draft = Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
                           **attrs)  # type: ignore[arg-type]  # fmt: skip
        created, _ = services.create_connection(draft)
        return services, created

    return make


def deliver(services: Services, day: int, rows: int = 40, **kw: object) -> None:
    services.ingest_bytes("Acme", f"calls_{day:02d}.csv", call_csv(rows, prefix=f"d{day}", **kw))  # type: ignore[arg-type]


def test_a_late_file_raises_one_alert_and_clears_when_it_arrives(
    inbox: Inbox, watched: Callable[..., tuple[Services, Connection]], clock: Clock
) -> None:
    services, acme = watched(
        SmtpSettings.from_env(),
        expect="Daily by 06:00",
        expect_grace_minutes=120,
        owner_email="owner@ours.example",
    )
    assert acme.expect == "daily by 06:00"
    clock.at(0, 5, 30)
    deliver(services, 0)
    assert services.check_deliveries() == []

    clock.at(1, 7, 59)  # the deadline passed, the grace not yet
    assert services.check_deliveries() == []
    clock.at(1, 8, 5)
    [alert] = services.check_deliveries()
    assert alert.kind == "late" and "has not arrived" in alert.message
    clock.at(1, 8, 10)
    assert services.check_deliveries() == []  # raised once, not at every check
    [still] = services.delivery_alerts("Acme")
    assert still.id == alert.id and still.notified
    [mail] = inbox.messages
    assert mail["To"] == "owner@ours.example" and "Acme: file late" in mail["Subject"]
    body = mail.get_body(("plain",))
    assert body is not None and "daily by 06:00" in body.get_content()
    events = services.connection_events("Acme")
    assert [e.kind for e in events] == [delivery_check.EVENT_RAISED]

    clock.at(1, 9, 30)
    deliver(services, 1)
    clock.at(1, 9, 35)
    assert services.check_deliveries() == []
    assert services.delivery_alerts("Acme") == []
    [history] = services.delivery_alert_history("Acme")
    assert history.cleared_at == clock.at(1, 9, 35) and "calls_01.csv arrived" in (history.clear_note or "")
    kinds = [e.kind for e in services.connection_events("Acme")]
    assert kinds == [delivery_check.EVENT_CLEARED, delivery_check.EVENT_RAISED]
    assert len(inbox.messages) == 1  # the clearing is in the history, not another mail

    # The calendar: day 0 on time, day 1 late, day 2 not due yet.
    [(c, days)] = services.delivery_calendar(clock.day0.date(), (clock.day0 + dt.timedelta(days=2)).date())
    assert c.id == acme.id
    assert [d.state for d in days] == ["received", "late", "pending"]


def test_a_slot_with_no_file_becomes_missing_and_the_late_alert_gives_way(
    watched: Callable[..., tuple[Services, Connection]], clock: Clock
) -> None:
    services, _ = watched(expect="daily by 06:00", expect_grace_minutes=60)
    clock.at(0, 5)
    deliver(services, 0)
    clock.at(1, 7, 30)
    [late] = services.check_deliveries()
    clock.at(2, 1)  # day 1's window closed (midway to day 2's deadline) without a file
    [missing] = services.check_deliveries()
    assert (late.kind, missing.kind) == ("late", "missing")
    assert [a.kind for a in services.delivery_alerts("Acme")] == ["missing"]
    assert "now missing" in (services.delivery_alert_history("Acme")[-1].clear_note or "")
    clock.at(2, 5)
    deliver(services, 2)
    clock.at(2, 5, 5)
    services.check_deliveries()
    assert services.delivery_alerts("Acme") == []


def test_the_cadence_is_learned_from_ten_daily_arrivals(
    watched: Callable[..., tuple[Services, Connection]], clock: Clock
) -> None:
    services, _ = watched()
    for day in range(10):
        clock.at(day, 5, 10 + 3 * day)  # 05:10 ... 05:37
        deliver(services, day, rows=20 + day % 3)

    status = services.delivery_status("Acme")

    assert status.suggestion is not None
    assert status.suggestion.expect == "daily by 05:45"
    assert status.suggestion.confidence == 1.0
    assert status.usual_rows == 21
    assert status.connection.expect is None  # a suggestion: nothing is set by itself


def test_a_volume_drift_raises_an_alert_cleared_by_the_next_file_in_range(
    watched: Callable[..., tuple[Services, Connection]], clock: Clock
) -> None:
    services, _ = watched(volume_tolerance=30)
    for day in range(4):
        clock.at(day, 5)
        deliver(services, day, rows=40)
    assert services.check_deliveries() == []
    clock.at(4, 5)
    deliver(services, 4, rows=10)

    [drift] = services.check_deliveries()
    assert drift.kind == "volume_drift"
    assert "has 10 rows, the usual is 40 (±30 %): -75 %" in drift.message
    assert services.check_deliveries() == []

    clock.at(5, 5)
    deliver(services, 5, rows=45)  # +12 %: back in range
    assert services.check_deliveries() == []
    assert services.delivery_alerts("Acme") == []
    assert "back in range (45 rows)" in (services.delivery_alert_history("Acme")[0].clear_note or "")


def test_a_spike_in_rejects_raises_an_alert(
    watched: Callable[..., tuple[Services, Connection]], clock: Clock
) -> None:
    services, _ = watched(expect="daily by 06:00")
    for day in range(3):
        clock.at(day, 5)
        deliver(services, day, rows=40)
    clock.at(3, 5)
    deliver(services, 3, rows=40, overrides={i: {"CallDuration": "abc"} for i in range(8)})  # 20 %

    [spike] = services.check_deliveries()

    assert spike.kind == "reject_spike" and "8 of 40 rows rejected (20%), the usual is 0%" in spike.message


def test_expectations_are_checked_on_save(watched: Callable[..., tuple[Services, Connection]]) -> None:
    services, _ = watched()
    with pytest.raises(InvalidInputError, match="expect: 'hourly' is not a cadence"):
        services.update_connection("Acme", expect="hourly")
    with pytest.raises(InvalidInputError, match="volume_tolerance"):
        services.update_connection("Acme", volume_tolerance=0)
    with pytest.raises(InvalidInputError, match="owner_email"):
        services.update_connection("Acme", owner_email="nobody")
    saved = services.update_connection("Acme", expect="weekly on mon,thu by 9:30", volume_tolerance=25)
    assert (saved.expect, saved.volume_tolerance) == ("weekly on mon,thu by 9:30", 25)


def test_the_engine_checks_deliveries_every_few_minutes(settings: Settings) -> None:
    from connectbatch.engine import Engine
    from connectbatch.services.delivery import CHECK_SECONDS

    engine = Engine(Services(settings))
    engine.start(servers=False)
    try:
        job = engine.scheduler._scheduler.get_job("delivery-check")
        assert job is not None and job.trigger.interval == dt.timedelta(seconds=CHECK_SECONDS)
    finally:
        engine.stop()


def test_a_connection_is_created_on_the_pipelines_clock(
    watched: Callable[..., tuple[Services, Connection]], clock: Clock
) -> None:
    """Delivery checks count the deadlines after `created_at` on the services' clock; a
    creation stamped by the database's own clock made a connection created between midnight and
    its deadline (real time) look late on its first check (failed from 00:00 to 06:00 UTC)."""
    _, acme = watched(expect="daily by 06:00")
    assert acme.created_at == clock.day0


def test_an_alert_raised_while_the_smtp_server_is_down_reaches_the_owner_later(
    watched: Callable[..., tuple[Services, Connection]], clock: Clock
) -> None:
    """The alert was e-mailed once, at the check: a relay down at that moment meant the owner
    never heard of it. It goes through the outbox now (pipeline/outbox.py)."""

    from connectbatch.pipeline import outbox

    port = free_port()  # a port nothing listens on yet
    smtp = SmtpSettings(host="127.0.0.1", port=port, sender="alerts@connectbatch.test")
    services, _ = watched(
        smtp, expect="Daily by 06:00", expect_grace_minutes=0, owner_email="owner@ours.example"
    )
    clock.at(0, 5, 30)
    deliver(services, 0)
    clock.at(1, 6, 5)
    [alert] = services.check_deliveries()
    with running_smtp("alerts@connectbatch.test", port=port) as (inbox, _):
        assert inbox.messages == []
        clock.now += dt.timedelta(seconds=outbox.BACKOFF[0])
        assert services.outbox.send_due() == 1
        [mail] = inbox.messages
    assert mail["To"] == "owner@ours.example" and "Acme: file late" in mail["Subject"]
    assert services.delivery_alerts("Acme")[0].id == alert.id


BAD_HEADER = b"Foo,Bar\r\n1,2\r\n"  # refused as a whole: the header lacks every call column


def test_a_file_refused_as_a_whole_is_no_volume_reading_and_raises_file_rejected(
    watched: Callable[..., tuple[Services, Connection]], clock: Clock
) -> None:
    """A file refused for its header counted as a file of 0 rows: a "-100 %" volume drift, and
    a 0 in the usual of the files after it (here the usual fell from 55 to 50 and the next
    file of 70 rows drifted). It is the partner's to fix: one "file rejected" alert instead."""
    services, _ = watched(volume_tolerance=30)
    for day, rows in enumerate((40, 60, 60, 50)):  # the usual: 55
        clock.at(day, 5)
        deliver(services, day, rows=rows)
    assert services.check_deliveries() == []
    clock.at(4, 5)
    services.ingest_bytes("Acme", "badhdr.csv", BAD_HEADER)

    [refused] = services.check_deliveries()
    assert refused.kind == "file_rejected"
    assert "badhdr.csv" in refused.message and "the header lacks required" in refused.message
    assert "the partner must fix it and send it again" in refused.message
    assert services.delivery_status("Acme").usual_rows == 55

    clock.at(5, 5)
    deliver(services, 5, rows=70)  # +27 % of the usual 55
    assert services.check_deliveries() == []
    assert services.delivery_alerts("Acme") == []
    [cleared] = services.delivery_alert_history("Acme")
    assert cleared.kind == "file_rejected" and "calls_05.csv loaded" in (cleared.clear_note or "")


def test_a_discarded_batch_is_no_volume_or_reject_reading(
    watched: Callable[..., tuple[Services, Connection]], clock: Clock
) -> None:
    """A held batch a reviewer discarded counted with its rows and rejects: a reject spike
    and a volume drift for a file a person had already refused."""
    services, _ = watched(volume_tolerance=30)
    for day in range(3):
        clock.at(day, 5)
        deliver(services, day, rows=40)
    clock.at(3, 5)
    held = services.ingest_bytes(
        "Acme",
        "held.csv",
        call_csv(10, prefix="held", overrides={i: {"CallDuration": "abc"} for i in range(5)}),
    )
    assert held.review == "quarantined"
    services.discard(held.id, "resend")

    assert services.check_deliveries() == []
    assert services.delivery_alert_history("Acme") == []


def test_setting_a_volume_tolerance_judges_the_newest_file_only(
    watched: Callable[..., tuple[Services, Connection]], clock: Clock
) -> None:
    """Turning the tolerance on judged the last five files at once: a burst of alerts for
    history. Only the newest file is judged (against the usual of those before it)."""
    services, _ = watched()
    for day, rows in enumerate((40, 40, 40, 10, 90, 60)):
        clock.at(day, 5)
        deliver(services, day, rows=rows)
    services.update_connection("Acme", volume_tolerance=30)

    [drift] = services.check_deliveries()
    assert drift.kind == "volume_drift" and "calls_05.csv" in drift.message and "+50 %" in drift.message
    assert services.check_deliveries() == []
    assert [a.id for a in services.delivery_alert_history("Acme")] == [drift.id]


def test_an_alert_for_a_connection_named_with_line_breaks_is_mailed_with_the_name_escaped(
    inbox: Inbox, watched: Callable[..., tuple[Services, Connection]], clock: Clock
) -> None:
    """A name with CR/LF (names are kept exact) made the Subject raise ValueError: the owner
    never heard of the alert."""
    services, acme = watched(
        SmtpSettings.from_env(),
        expect="Daily by 06:00",
        expect_grace_minutes=0,
        owner_email="owner@ours.example",
    )
    hostile = "Acme\r\nBcc: spy@evil.example"
    services.update_connection(acme.id, name=hostile)
    clock.at(0, 5, 30)
    services.ingest_bytes(hostile, "calls_00.csv", call_csv(40, prefix="d0"))
    clock.at(1, 6, 5)
    assert len(services.check_deliveries()) == 1
    [mail] = inbox.messages
    assert mail["To"] == "owner@ours.example" and mail["Bcc"] is None
    assert mail["Subject"] == "[ConnectBatch] Acme\\r\\nBcc: spy@evil.example: file late"
    assert services.delivery_alerts(hostile)[0].notified


def test_a_late_file_is_noticed_in_the_weeks_after_the_clocks_go_back(settings: Settings) -> None:
    """A New York connection expecting a file daily by 01:30 (an hour that happens twice on
    2026-11-01): the deadlines stopped at that night, so a file late on 11-10 raised nothing
    (the only alert was a "missing" for 11-01) until the change was 67 days back."""
    clock = HandClock(dt.datetime(2026, 10, 20, 12, tzinfo=dt.UTC))
    services = Services(settings, clock=clock)
    draft = Connection(
        "Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
        timezone="America/New_York", expect="daily by 01:30", expect_grace_minutes=60,
    )  # fmt: skip
    services.create_connection(draft)
    clock.now = dt.datetime(2026, 11, 10, 8, tzinfo=dt.UTC)  # due 06:30 UTC + 1 h grace
    raised = services.check_deliveries()
    assert [a.kind for a in raised] == [delivery_check.MISSING, delivery_check.LATE]
    assert "2026-11-09 01:30" in raised[0].message and "2026-11-10 01:30" in raised[1].message
