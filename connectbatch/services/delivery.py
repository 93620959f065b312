"""Expected delivery: check every watched connection and raise or clear alerts, list the
open alerts (the app's banner), suggest a cadence learned from the files received, and lay
expected vs received files on a calendar.

Who is told of an alert (the connection's *owner*): `Connection.owner_email` when set (the
person at our end who answers for the feed), else the partner's return address (the people
who send the files). Nobody, when neither is set: the alert is still in the banner and the
history.

Analysts set expectations (`update_connection`) and may run a check by hand; every role reads
alerts and the calendar, like other lists. The engine checks every `CHECK_SECONDS`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, replace
from email.message import EmailMessage

import duckdb

from connectbatch.delivery import cadence, calendar, learn
from connectbatch.delivery import check as delivery_check
from connectbatch.escaping import visible
from connectbatch.models import Connection, Direction, Role
from connectbatch.pipeline.mailer import one_address
from connectbatch.services.base import InvalidInputError, NotFoundError, ServiceBase, requires
from connectbatch.settings import SmtpSettings
from connectbatch.store import connections as connection_store
from connectbatch.store import delivery as delivery_store
from connectbatch.store import partners as partner_store
from connectbatch.store.delivery import Alert

CHECK_SECONDS = 300
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
log = logging.getLogger("connectbatch.services.delivery")


@dataclass(frozen=True)
class DeliveryStatus:
    """What the CLI and the page say about one connection."""

    connection: Connection
    suggestion: learn.Suggestion | None
    usual_rows: int | None
    open_alerts: list[Alert]
    owner: str | None


def checked_expectation(c: Connection) -> Connection:
    """The delivery fields checked and tidied (part of the connection check on save)."""
    expect = (c.expect or "").strip() or None
    if expect is not None:
        try:
            expect = cadence.check(expect)
        except ValueError as exc:
            raise InvalidInputError(
                "expect", f"{expect!r} is not a cadence such as 'daily by 06:00', 'weekdays by 09:00', "
                f"'weekly on mon' or a cron expression ({exc})",
            ) from None  # fmt: skip
    if not 0 <= int(c.expect_grace_minutes) <= 7 * 24 * 60:
        raise InvalidInputError("expect_grace_minutes", "must be between 0 minutes and 7 days")
    if c.volume_tolerance is not None and not 1 <= int(c.volume_tolerance) <= 1000:
        raise InvalidInputError("volume_tolerance", "must be between 1 and 1000 percent")
    owner = (c.owner_email or "").strip() or None
    # one address a mail header carries as it is: `ops,cfo@x.example` is two, `ops@[x.example`
    # made Python's header parser raise at the first alert (mailer.one_address)
    if owner is not None and (not _EMAIL.fullmatch(owner) or one_address(owner) is None):
        raise InvalidInputError("owner_email", f"{owner!r} is not an e-mail address")
    return replace(c, expect=expect, owner_email=owner)


class DeliveryServices(ServiceBase):
    smtp: SmtpSettings | None

    @requires(Role.ANALYST)
    def check_deliveries(self) -> list[Alert]:
        """Check every watched connection now (the engine's job); returns the alerts raised.
        Each raised alert is e-mailed to its connection's owner once."""
        now = self.clock()
        raised: list[tuple[Alert, str | None, Connection]] = []
        with self.db.connect() as con:
            watched = [c for c in connection_store.list_all(con) if delivery_check.monitored(c)]
        for c in watched:
            with self.db.transaction() as con:
                outcome = delivery_check.check(con, c, now)
                owner = self._owner(con, c) if outcome.raised else None
            raised += [(a, owner, c) for a in outcome.raised]
        for alert, owner, c in raised:
            # one alert's mail that cannot be made (an owner address no header carries, the
            # partner's, checked more loosely) must not cost the others theirs: an alert is
            # raised once, so a mail not sent in this pass is never sent
            try:
                if owner and self._mail_alert(owner, c, alert):
                    with self.db.transaction() as con:
                        delivery_store.mark_notified(con, alert.id)
            except Exception:
                log.exception("could not mail an alert", extra={"connection_id": c.id})
        return [a for a, _, _ in raised]

    def delivery_alerts(self, name_or_id: str | int | None = None) -> list[Alert]:
        """Open alerts (of one connection, or all), oldest first; messages hold partner text."""
        connection_id = self.connection(name_or_id).id if name_or_id is not None else None
        with self.db.connect() as con:
            return delivery_store.open_alerts(con, connection_id)

    def delivery_alert_history(self, name_or_id: str | int) -> list[Alert]:
        """Every alert of a connection, open and cleared, newest first."""
        connection_id = self.connection(name_or_id).id
        with self.db.connect() as con:
            return delivery_store.of_connection(con, connection_id)

    def delivery_status(self, name_or_id: str | int) -> DeliveryStatus:
        """The expectation, the learned suggestion and usual rows, the open alerts."""
        c = self.connection(name_or_id)
        now = self.clock()
        with self.db.connect() as con:
            arrivals = delivery_store.arrivals(con, c.id, now - delivery_check.LOOKBACK, now)
            alerts = delivery_store.open_alerts(con, c.id)
            owner = self._owner(con, c)
        readings = [a for a in arrivals if a.reading]  # a refused file's 0 rows are not usual
        return DeliveryStatus(
            connection=c, suggestion=learn.suggest([a.at for a in arrivals], c.timezone),
            usual_rows=learn.usual_rows([a.rows for a in readings[-delivery_check.USUAL_FROM:]]),
            open_alerts=alerts, owner=owner,
        )  # fmt: skip

    def delivery_calendar(
        self, first: dt.date, last: dt.date, partner: str | int | None = None
    ) -> list[tuple[Connection, list[calendar.Day]]]:
        """Expected vs received files per inbound connection per day in [first, last]."""
        if last < first or (last - first).days > 120:
            raise InvalidInputError("last", "the calendar shows 1 to 120 days")
        partner_id = None
        if partner is not None:
            with self.db.connect() as con:
                found = partner_store.find(con, str(partner))
            if found is None:
                raise NotFoundError(f"there is no partner named {partner!r}")
            partner_id = found.id
        with self.db.connect() as con:
            every = connection_store.list_all(con)
        chosen = [
            c for c in every
            if c.direction is Direction.INBOUND and (partner_id is None or c.partner_id == partner_id)
        ]  # fmt: skip
        since = dt.datetime.combine(first - dt.timedelta(days=3), dt.time(), dt.UTC)
        until = dt.datetime.combine(last + dt.timedelta(days=3), dt.time(), dt.UTC)
        with self.db.connect() as con:
            arrivals = delivery_store.arrivals(con, None, since, until)
        now = self.clock()
        return [
            (c, calendar.days(c, [a for a in arrivals if a.connection_id == c.id], first, last, now))
            for c in chosen
        ]

    def _owner(self, con: duckdb.DuckDBPyConnection, c: Connection) -> str | None:
        if c.owner_email:
            return c.owner_email
        if c.partner_id is None:
            return None
        try:
            return partner_store.get(con, c.partner_id).return_email
        except LookupError:
            return None

    def _mail_alert(self, to: str, c: Connection, alert: Alert) -> bool:
        if self.smtp is None:
            return False
        if one_address(to) is None:
            log.warning("no alert mail for %s: %r is not one e-mail address", visible(c.name), visible(to))
            return False
        message = EmailMessage()
        message["From"] = self.smtp.sender
        message["To"] = to
        label = delivery_check.KIND_LABELS[alert.kind]
        message["Subject"] = f"[ConnectBatch] {visible(c.name)}: {label.lower()}"
        message.set_content(
            "\n".join(
                [
                    f"Connection: {visible(c.name)}",
                    f"Alert: {label} (raised {alert.raised_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC)",
                    "",
                    visible(alert.message),
                    "",
                    "It clears by itself when the file arrives (or the next file loads, or is back",
                    "in range);",
                    "the connection's history in ConnectBatch records both.",
                ]
            )
        )
        # queued: the outbox tries again while the SMTP server is down, so "notified" holds
        self.outbox.put(message, kind="alert", connection_id=c.id)
        return True
