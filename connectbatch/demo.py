"""A ready demo for `make run`: connections of every method and runs of every outcome.

Idempotent: a data directory that already has the demo connections is left as it is, and
one missing some gets those (and their runs) only. The
files are generated with event dates in the last weeks, within the 30-day lock period, so
validation treats them as current data and their actions start PENDING whatever day the demo
is started. One small file, named for it, is a back-fill older than the lock period: its
actions are created LOCKED with the reason (the connection's late-events policy).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from dataclasses import dataclass, field

from connectbatch.models import (
    DEFAULT_SCHEDULE,
    AfterSuccess,
    Connection,
    Direction,
    Method,
    Methodology,
    PartnerType,
    Role,
    Run,
)
from connectbatch.secrets import new_password
from connectbatch.services import CredentialInput, Provisioned, Services

PROVIDERS = ("Invoca", "CallRail", "Ringba", "Marchex")
STATUSES = ("ANSWER",) * 8 + ("CANCEL", "IVR_DROPOFF", "NO_TRANSFER_ATTEMPT", "FAILURE")
CITIES = (("Austin", "TX", "78701"), ("Boston", "MA", "02134"), ("Denver", "CO", "80202"),
          ("Seattle", "WA", "98101"), ("Toronto", "ON", ""))  # fmt: skip
COLUMNS = (
    "CampaignId", "MediaId", "EventDate", "ActionTrackerId", "CallProvider", "CallSessionId",
    "CallerId", "CalledPhoneNumber", "CallDuration", "TalkDuration", "CallStatus",
    "CallerPhoneNumberCountry", "City", "Region", "Zip", "SaleAmount", "DispositionName",
)  # fmt: skip


@dataclass
class DemoSummary:
    created: list[str] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)
    provisioned: dict[str, Provisioned] = field(default_factory=dict)


FRESH_DAYS = (0.1, 25.0)  # event ages of current data: inside the 30-day lock period
LATE_DAYS = (35.0, 60.0)  # a back-fill: accepted by validation (90 days), past the lock period


def call_file(
    rng: random.Random,
    now: dt.datetime,
    rows: int,
    prefix: str,
    broken: int = 0,
    age_days: tuple[float, float] = FRESH_DAYS,
) -> bytes:
    """A call-conversion CSV with realistic values; `broken` rows carry typical mistakes;
    events are `age_days` (from, to) old."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    mistakes = [
        ("CampaignId", "abc"), ("EventDate", "2026-02-30T10:00:00Z"), ("CallDuration", "-5"),
        ("SaleAmount", "12.34.56"), ("CallStatus", "MAYBE"), ("CallerPhoneNumberCountry", "UK"),
    ]  # fmt: skip
    # Broken rows take the mistakes in turn, so `broken=6` shows each kind once.
    bad_rows = {row: k for k, row in enumerate(sorted(rng.sample(range(rows), min(broken, rows))))}
    for i in range(rows):
        city, region, zip_code = rng.choice(CITIES)
        when = now - dt.timedelta(days=rng.uniform(*age_days))
        talk = rng.randint(0, 900)
        status = rng.choice(STATUSES)
        sale = status == "ANSWER" and rng.random() < 0.4
        row = {
            "CampaignId": str(rng.choice((1001, 1002, 1003))),
            "MediaId": str(rng.choice((98765, 98766, 98770, 98801, 98802))),
            "EventDate": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ActionTrackerId": "20001",
            "CallProvider": rng.choice(PROVIDERS),
            "CallSessionId": f"{prefix}-{i:06d}",
            "CallerId": f"+1{rng.randint(2000000000, 9999999999)}",
            "CalledPhoneNumber": "+18005550100",
            "CallDuration": str(talk + rng.randint(0, 120)),
            "TalkDuration": str(talk),
            "CallStatus": status.lower() if rng.random() < 0.1 else status,
            "CallerPhoneNumberCountry": "CA" if city == "Toronto" else "US",
            "City": city, "Region": region, "Zip": zip_code,
            "SaleAmount": f"{rng.uniform(20, 1500):,.2f}" if sale else "",
            "DispositionName": "Sale" if rng.random() < 0.3 else "",
        }  # fmt: skip
        if i in bad_rows:
            column, value = mistakes[bad_rows[i] % len(mistakes)]
            row[column] = value
        writer.writerow([row[c] for c in COLUMNS])
    return out.getvalue().encode()


def _connections() -> list[tuple[Connection, CredentialInput | None]]:
    inbound, outbound = Direction.INBOUND, Direction.OUTBOUND
    demo_password = "demo-password-not-real"
    return [
        (
            Connection("Acme Call Tracking", "call_conversions", inbound, Method.SFTP, Methodology.PUSH,
                       pattern="calls_*.csv", return_email="ops@acme.example", lock_days=30),
            None,
        ),
        (
            Connection("Invoca daily export", "call_conversions", inbound, Method.SFTP, Methodology.PULL,
                       host="sftp.invoca.example", port=22, folder="/exports/daily",
                       pattern="Calls_202?_*.csv", schedule="0 6 * * *", min_age_seconds=300,
                       after_success=AfterSuccess.ARCHIVE, archive_folder="/exports/done"),
            CredentialInput(name="Invoca SFTP", username="acme", password=demo_password),
        ),
        (
            Connection("CallRail mailbox", "call_conversions", inbound, Method.EMAIL, Methodology.PUSH,
                       pattern="CallRail_*.csv", return_email="calls@acme.example"),
            None,
        ),
        (
            Connection("Brand returns", "action_modifications", inbound, Method.FTP, Methodology.PUSH,
                       pattern="returns_*.csv"),
            None,
        ),
        (
            Connection("Web conversions", "conversions", inbound, Method.EMAIL, Methodology.PULL,
                       host="imap.acme.example", port=993, pattern="Conversions_202?_*.csv",
                       schedule="*/30 * * * *"),
            CredentialInput(name="Acme mailbox", username="feeds@acme.example", password=demo_password),
        ),
        (
            Connection("Partner results pickup", "call_conversions", outbound, Method.SFTP,
                       Methodology.PULL_FROM_US, schedule=DEFAULT_SCHEDULE),
            None,
        ),
    ]  # fmt: skip


# The demo's partners: (name, type, return e-mail, contacts), and whose each connection is.
DEMO_PARTNERS = (
    ("Acme Insurance", PartnerType.BRAND, "ops@acme.example", "Dana Ortiz <dana@acme.example>"),
    ("Invoca", PartnerType.VENDOR, None, "support@invoca.example"),
    ("Leadwave Media", PartnerType.PUBLISHER, "calls@leadwave.example", "Sam Lee <sam@leadwave.example>"),
)
# The publisher's platform MediaIds: the explorer shows "Leadwave Media (98765)" for these
# and the bare number for the demo's other MediaIds (98801, 98802), as for an unknown one.
DEMO_MEDIA = {"Leadwave Media": (98765, 98766, 98770)}
DEMO_OWNERS = {
    "Acme Call Tracking": "Acme Insurance",
    "Invoca daily export": "Invoca",
    "CallRail mailbox": "Leadwave Media",
    "Brand returns": "Acme Insurance",
    "Web conversions": "Acme Insurance",
    "Partner results pickup": "Acme Insurance",
}


DEMO_USERS = {
    "admin": Role.ADMIN,
    "analyst": Role.ANALYST,
    "reviewer": Role.REVIEWER,
    "partner": Role.PARTNER_MANAGER,
}


def users(services: Services) -> dict[str, tuple[Role, str]]:
    """One login per role (DEMO_USERS) that does not exist yet, with a generated password:
    name -> (role, password), for `connectbatch demo` to print once. Existing users are
    left as they are (their passwords cannot be shown again)."""
    known = {u.name for u in services.users()}
    created: dict[str, tuple[Role, str]] = {}
    for name, role in DEMO_USERS.items():
        if name in known:
            continue
        password = new_password()
        services.add_user(name, role, password)
        created[name] = (role, password)
    return created


def load(services: Services, seed: int = 7) -> DemoSummary:
    """Creates the demo connections that are missing, and the runs of those it created.
    Only the missing ones: a first run cut short, or a demo connection since renamed or
    deleted, made every later `make run` stop at "a connection named ... already exists"
    (exit 2: the app never started). None missing: nothing is done."""
    summary = DemoSummary()
    existing = {c.name for c in services.connections()}
    missing = [(draft, credential) for draft, credential in _connections() if draft.name not in existing]
    if not missing:
        return summary
    known = {p.name for p in services.partners()}
    for name, kind, email, contacts in DEMO_PARTNERS:
        if name not in known:
            services.add_partner(
                name, kind, contacts=contacts, return_email=email, media_ids=DEMO_MEDIA.get(name, ())
            )
    for draft, credential in missing:
        created, provisioned = services.create_connection(draft, credential, partner=DEMO_OWNERS[draft.name])
        summary.created.append(created.name)
        if provisioned is not None:
            summary.provisioned[created.name] = provisioned
    summary.runs = [run.id for run in _runs(services, set(summary.created), seed)]
    return summary


def _runs(services: Services, created: set[str], seed: int) -> list[Run]:
    """The demo's runs, into the connections just `created` only (one already there has its
    own history). The files are made in one order whatever is ingested: the same seed gives
    the same files."""
    rng = random.Random(seed)
    now = services.clock()
    good = call_file(rng, now, 1500, "acme-a", broken=12)
    week2 = call_file(rng, now, 900, "acme-b", broken=4)
    callrail = call_file(rng, now, 600, "cr-a", broken=2)
    # Session ids already loaded from CallRail week 1: a critical expectation fails -> quarantined.
    callrail_again = call_file(rng, now, 300, "cr-a", broken=0)
    wrong_export = b"Date,Caller,Duration\r\n2026-03-01,+15550001,63\r\n"
    # A back-fill older than the lock period: loaded, its actions created LOCKED with the reason.
    backfill = call_file(rng, now, 8, "acme-late", age_days=LATE_DAYS)
    files = [
        ("Acme Call Tracking", "calls_week1.csv", good),
        ("Acme Call Tracking", "calls_week1_resent.csv", good),  # duplicate
        ("Acme Call Tracking", "calls_week2.csv", week2),
        ("CallRail mailbox", "CallRail_2026_w1.csv", callrail),
        ("CallRail mailbox", "CallRail_2026_w2.csv", callrail_again),
        ("Acme Call Tracking", "calls_backfill_older_than_lock_period.csv", backfill),
        ("Acme Call Tracking", "calls_wrong_export.csv", wrong_export),
    ]
    runs = [services.ingest_bytes(name, file, data, "push") for name, file, data in files if name in created]
    first = services.actions("Acme Call Tracking", limit=3) if "Brand returns" in created else []
    if len(first) >= 2:
        returns = "ActionId,Amount,Reason\r\n" + "\r\n".join(
            [
                f"{first[0].label},0,Returned",
                f"{first[1].label},10.00,Partial refund",
                "A-999999,0,Unknown order",
            ]
        )
        runs.append(services.ingest_bytes("Brand returns", "returns_2026_w1.csv", returns.encode(), "push"))
    return runs
