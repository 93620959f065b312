"""The nouns of the product as plain dataclasses: what the store returns and the UI shows."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # specs import Method from here
    from connectbatch.transfer.specs import AuthKind, TransferSpec


class Direction(StrEnum):
    INBOUND = "inbound"  # "Give data to us"
    OUTBOUND = "outbound"  # "Receive data from us"


class Method(StrEnum):
    EMAIL = "email"
    SFTP = "sftp"
    FTP = "ftp"


class Methodology(StrEnum):
    PUSH = "push"  # Push to us (we host the endpoint, provision credentials)
    PULL = "pull"  # Pull from third party (we log in to theirs)
    PULL_FROM_US = "pull_from_us"  # outbound: they collect files from our server


METHOD_LABELS = {Method.EMAIL: "Email", Method.SFTP: "SFTP", Method.FTP: "FTP"}
METHODOLOGY_LABELS = {
    Methodology.PUSH: "Push to us",
    Methodology.PULL: "Pull from third party",
    Methodology.PULL_FROM_US: "Pull from us",
}


class ConnectionStatus(StrEnum):
    NONE = "None"
    IN_PROGRESS = "In Progress"
    COMPLETED = "Completed"
    FAILED = "Failed"  # a failed transfer or file, never a batch held for review
    # a batch of the connection waits for a reviewer (quarantine); cleared on release/discard
    NEEDS_REVIEW = "Needs review"

    @property
    def shown(self) -> ConnectionStatus:
        """The status as people read it, one of the seed's None / In Progress / Completed /
        Failed: a connection whose batch awaits a reviewer reads Completed (its transfer and
        parse completed; nothing failed) and says "needs review" apart (app, CLI, JSON)."""
        return ConnectionStatus.COMPLETED if self is ConnectionStatus.NEEDS_REVIEW else self


class RunStatus(StrEnum):
    IN_PROGRESS = "In Progress"
    COMPLETED = "Completed"
    FAILED = "Failed"  # a failed transfer or file (or a batch a reviewer discarded)
    NEEDS_REVIEW = "Needs review"  # held for review (quarantined); nothing failed


class ActionStatus(StrEnum):
    PENDING = "PENDING"
    MODIFIED = "MODIFIED"
    REVERSED = "REVERSED"
    LOCKED = "LOCKED"


class AfterSuccess(StrEnum):
    """What a pull does with the partner's file once it is settled (loaded or a duplicate)."""

    LEAVE = "leave"
    ARCHIVE = "archive"  # move it to the connection's archive folder
    DELETE = "delete"


class FileState(StrEnum):
    """Where a file stands in the ledger (`files.state`)."""

    FETCHED = "fetched"  # staged and recorded; nothing parsed yet
    PARSED = "parsed"
    VALIDATED = "validated"
    LOADED = "loaded"  # its rows count (also after a reviewer released it)
    DUPLICATE = "duplicate"  # same bytes as a file already loaded or held: nothing done
    SKIPPED = "skipped"  # a pull left it alone (e.g. taken before)
    REJECTED = "rejected"  # unreadable as a whole: the parser refused the file
    FAILED = "failed"  # an internal error or an interrupted process
    QUARANTINED = "quarantined"  # held for review (failed a critical expectation)
    DISCARDED = "discarded"  # a reviewer refused the held batch


class MailState(StrEnum):
    """Where a queued e-mail stands (`mail_outbox.state`, pipeline/outbox.py)."""

    PENDING = "pending"  # to be tried (again) at its next_attempt_at
    SENDING = "sending"  # a sender has it now (a claim older than CLAIM_SECONDS: it died)
    SENT = "sent"
    FAILED = "failed"  # given up: a permanent refusal, or two days of failures


# Time zone names that read as a region's time but are one fixed offset all year: "EST" is
# UTC-05:00 in summer too, so a New York partner's summer calls would be an hour off. A
# connection is refused them, with the zone meant and the one for a fixed offset.
FIXED_ABBREVIATIONS = {
    "EST": ("America/New_York", "America/Panama"),
    "MST": ("America/Denver", "America/Phoenix"),
}


class LateEvents(StrEnum):
    """What a connection does with an event already past its lock period when it arrives
    (validation accepts events up to 90 days old; the default lock period is 30 days)."""

    LOCK = "lock"  # create the action LOCKED, with the reason and an audit entry
    REFUSE = "refuse"  # reject the row, with the reason


class ReviewState(StrEnum):
    """A run's place in data-quality review (`runs.review`); None when nobody needs to decide."""

    QUARANTINED = "quarantined"  # awaiting a reviewer
    RELEASED = "released"
    DISCARDED = "discarded"


class Redelivery(StrEnum):
    """What a file repeating records (keys) the connection already loaded does
    (`connections.redelivery`)."""

    NEW_KEYS_ONLY = "new_keys_only"  # the batch is held for review; release loads only new keys
    SUPERSEDE = "supersede"  # a corrected record replaces the stored one and its pending action


class CatalogMode(StrEnum):
    """How a product-catalog file relates to the catalog already stored (`connections.catalog_mode`)."""

    UPDATES = "updates"  # only the items listed change
    SNAPSHOT = "snapshot"  # the full catalog: items it does not list are marked removed


# The schedule a new pull or "Pull from us" connection starts with (the wizard's and the
# CLI's default): every hour at the hour, UTC. The seeds' connections are processed
# automatically once set up; with no schedule a pull ran only on Run now, and an outbound
# export never ran, with nothing to say so. An analyst may clear it (Run now only).
DEFAULT_SCHEDULE = "0 * * * *"


@dataclass
class Connection:
    name: str
    data_type: str
    direction: Direction
    method: Method
    methodology: Methodology
    id: int = 0
    host: str | None = None
    port: int | None = None
    folder: str | None = None
    pattern: str = "*"
    return_email: str | None = None
    schedule: str | None = None
    lock_days: int = 30
    min_age_seconds: int = 0
    timezone: str = "UTC"
    encoding: str | None = None
    delimiter: str = ","
    column_map: dict[str, str] = field(default_factory=dict)
    after_success: AfterSuccess = AfterSuccess.LEAVE
    archive_folder: str | None = None
    # Method-specific settings (TLS, verify, CA file, IMAP flags, host-key fingerprint...);
    # None until services.check fills in the method's defaults.
    transfer: TransferSpec | None = None
    status: ConnectionStatus = ConnectionStatus.NONE
    last_active: dt.datetime | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    redelivery: Redelivery = Redelivery.NEW_KEYS_ONLY
    catalog_mode: CatalogMode = CatalogMode.UPDATES
    # The partner this connection belongs to (every connection has one; None only on a draft).
    partner_id: int | None = None
    # Outbound only: the inbound connections (of the same partner) whose rows it exports;
    # empty means every inbound connection of its partner with its data type.
    export_sources: list[int] = field(default_factory=list)
    late_events: LateEvents = LateEvents.LOCK
    # Expected delivery (connectbatch/delivery): when files are due ("daily by 06:00",
    # "weekdays by 09:00", "weekly on mon by 12:00" or a cron expression, in `timezone`),
    # how long after that a file is still on time, how far a file's row count may stray from
    # the usual (percent; None: not checked), and who is told of an alert (else the partner's
    # return address).
    expect: str | None = None
    expect_grace_minutes: int = 60
    volume_tolerance: int | None = None
    owner_email: str | None = None
    # Inbound only: how later changes of its records go back to the partner (status
    # sync-back, pipeline/syncback.py): "files" (its partner's Pull-from-us folder), "email"
    # (the return address); empty = off. `status_words` overrides our status -> their word.
    sync_back: list[str] = field(default_factory=list)
    status_words: dict[str, str] = field(default_factory=dict)
    # E-mail push only: the tag of the address partners send to (inbox+<tag>@...), made from
    # the name and a random ending at creation and kept through renames (mail_address).
    mail_tag: str | None = None


@dataclass
class Run:
    id: int
    connection_id: int
    trigger: str
    status: RunStatus
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    review: ReviewState | None = None
    review_note: str | None = None
    files_seen: int = 0
    files_loaded: int = 0
    files_skipped: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    actions_created: int = 0
    reason: str | None = None
    pid: int | None = None
    retry_of: int | None = None
    # records a file repeated: identical (nothing changed), replaced (a newer version stored),
    # removed (a catalog snapshot no longer lists them)
    rows_unchanged: int = 0
    rows_replaced: int = 0
    rows_removed: int = 0
    # existing actions the run changed: modified or reversed by a modifications file, or
    # re-pointed at a corrected record (supersede); `actions_created` counts only new ones
    actions_changed: int = 0
    # the version of the connection's field mapping the run parsed with (None: no saved mapping)
    mapping_version: int | None = None


@dataclass
class FileRecord:
    id: int
    connection_id: int
    run_id: int
    name: str
    source: str
    size: int
    sha256: str
    state: FileState
    remote_path: str | None = None
    mtime: dt.datetime | None = None
    message: str | None = None
    rows_accepted: int = 0
    rows_rejected: int = 0
    received_at: dt.datetime | None = None


@dataclass
class RejectRow:
    run_id: int
    file_id: int
    line: int
    column: str | None
    value: str | None
    reason: str
    key: str | None = None  # the row's key, as far as it could be read (None: not readable)
    qualifier: str | None = None  # the key's qualifier (VendorEventId), as far as it was read

    @property
    def shown_key(self) -> str | None:
        """The key as a person reads it, as pending actions show it: "C-1", or "C-1 / T-2"
        with a VendorEventId (the event of the call the row was)."""
        return self.key if self.qualifier is None else f"{self.key or ''} / {self.qualifier}"


# An action's id as people and files write it: 123, "123", "A-000123", "a123" (the digits).
ACTION_ID = re.compile(r"\s*(?:A-?)?0*(\d{1,18})\s*", re.IGNORECASE)


@dataclass
class Action:
    id: int
    connection_id: int
    run_id: int
    line: int
    data_type: str
    source_key: str
    event_date: dt.datetime
    amount: Decimal
    original_amount: Decimal
    status: ActionStatus
    lock_at: dt.datetime
    campaign_id: int | None = None
    media_id: int | None = None
    reason: str | None = None
    state_before_lock: ActionStatus | None = None  # what a LOCKED action was when it locked
    currency: str | None = None  # ISO 4217 of the amounts, where the row carried one (conversions)

    @property
    def amount_text(self) -> str:
        """The amount as lists show it, with its currency where the row named one."""
        return f"{self.amount} {self.currency}" if self.currency else str(self.amount)

    @property
    def label(self) -> str:
        return f"A-{self.id:06d}"

    @property
    def status_text(self) -> str:
        """The status as lists show it: a locked reversal or modification says what it was
        ("LOCKED (REVERSED)"): as a bare LOCKED 0.00 an analyst's reversals went missing."""
        was = self.state_before_lock
        if self.status is ActionStatus.LOCKED and was in (ActionStatus.REVERSED, ActionStatus.MODIFIED):
            return f"{self.status.value} ({was.value})"
        return self.status.value


@dataclass
class AuditEntry:
    action_id: int
    changed_at: dt.datetime
    actor: str
    change: str
    old_status: str | None
    new_status: str
    old_amount: Decimal | None
    new_amount: Decimal | None
    reason: str | None
    # when a modification or reversal took effect at the brand (a file's ModificationDate,
    # else when it was made); None on locks and on changes from before it was kept
    effective_at: dt.datetime | None = None


@dataclass
class Credential:
    """One set of login details of a connection (several may exist; one is main)."""

    id: int
    connection_id: int
    name: str
    kind: str  # provisioned (a login on our servers) | remote (a login on theirs)
    username: str | None
    is_main: bool
    status: str  # Active | Error
    return_email: str | None = None
    host_key: str | None = None
    last_error: str | None = None
    has_secret: bool = False
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    # remote credentials: password or SSH key, as the person chose (None: stored before the
    # choice existed; the secret's shape decides)
    auth: AuthKind | None = None
    has_passphrase: bool = False
    # Credentials reuse: the partner owning the set, and every connection using it (names,
    # sorted), so pages can say "shared with ..." (one name: not shared).
    partner_id: int | None = None
    used_by: tuple[str, ...] = ()


class Role(StrEnum):
    """What a logged-in person may do (DESIGN.md, roles); admin may do everything."""

    ADMIN = "admin"  # users and settings
    ANALYST = "analyst"  # partners, connections, credentials, runs
    REVIEWER = "reviewer"  # validation, release/discard, dry runs
    PARTNER_MANAGER = "partner_manager"  # call data, pending actions


ROLE_LABELS = {
    Role.ADMIN: "Admin",
    Role.ANALYST: "Analyst",
    Role.REVIEWER: "Reviewer",
    Role.PARTNER_MANAGER: "Partner manager",
}


@dataclass(frozen=True)
class User:
    """A person who logs in to the app; the password hash never leaves the store."""

    id: int
    name: str
    role: Role
    disabled: bool = False
    failed_logins: int = 0
    last_failed_at: dt.datetime | None = None
    created_at: dt.datetime | None = None

    def may(self, *roles: Role) -> bool:
        """True when this user has one of `roles`; admin has every role."""
        return self.role is Role.ADMIN or self.role in roles


class PartnerType(StrEnum):
    """What kind of business a partner is (seeds: vendors send call data, publishers and
    agencies promote, brands advertise)."""

    VENDOR = "vendor"
    PUBLISHER = "publisher"
    AGENCY = "agency"
    BRAND = "brand"


PARTNER_TYPE_LABELS = {
    PartnerType.VENDOR: "Vendor",
    PartnerType.PUBLISHER: "Publisher",
    PartnerType.AGENCY: "Agency",
    PartnerType.BRAND: "Brand",
}


@dataclass
class Partner:
    """A business we exchange data with; every connection belongs to one, and an outbound
    connection exports only its own partner's data."""

    id: int
    name: str  # unique, case-insensitively
    type: PartnerType
    contacts: str | None = None  # free text: names, e-mail addresses, phone numbers
    return_email: str | None = None
    notes: str | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    # a publisher's platform MediaIds: screens show "Name (98765)" for them (each id is one
    # partner's at most)
    media_ids: list[int] = field(default_factory=list)


@dataclass
class Export:
    """One export written for an outbound connection (the export ledger)."""

    id: int
    connection_id: int
    trigger: str  # manual | cli | schedule | window
    file_name: str | None
    rows: int
    new_rows: int = 0  # rows of files not exported before
    changes: int = 0  # action status changes carried
    created_at: dt.datetime | None = None


@dataclass
class SyncBack:
    """One status file sent back to a partner for an inbound connection (the sync-back
    ledger): written to its outbound folder (channel files) or e-mailed (channel email)."""

    id: int
    connection_id: int
    channel: str  # files | email
    trigger: str  # manual | cli | schedule
    file_name: str
    rows: int
    recipient: str | None = None
    created_at: dt.datetime | None = None


class SyncStatus(StrEnum):
    """A record's change as status sync-back reports it (pipeline/syncback.py), before the
    partner's own word for it (Connection.status_words)."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    MODIFIED = "modified"
    REVERSED = "reversed"
    LOCKED = "locked"
    RELEASED = "released"  # a held batch a reviewer loaded
    DISCARDED = "discarded"  # a held batch a reviewer refused
    REMOVED = "removed"  # a catalog item a snapshot file no longer lists (catalog mode snapshot)
