"""What `connectbatch connection` prints: a connection's settings, its credentials, and the
login provisioned for a partner (shown once). Kept apart from the commands' flags and
handlers (cli/connections.py), which only decide what to print."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from connectbatch import services
from connectbatch.cli import common as cc
from connectbatch.cli import transfer_flags
from connectbatch.escaping import visible
from connectbatch.models import (
    METHOD_LABELS,
    METHODOLOGY_LABELS,
    Connection,
    ConnectionStatus,
    Credential,
    Direction,
    LateEvents,
    Method,
    Methodology,
)


def connection_dict(c: Connection) -> dict[str, Any]:
    """The connection as JSON: its status one of the seed's four, a held batch apart."""
    return {
        **dataclasses.asdict(c),
        "status": c.status.shown.value,
        "needs_review": c.status is ConnectionStatus.NEEDS_REVIEW,
    }


def review_flag(c: Connection) -> str:
    """What follows the status of a connection whose batch awaits a reviewer."""
    return ", needs review" if c.status is ConnectionStatus.NEEDS_REVIEW else ""


def credential_dict(c: Credential) -> dict[str, Any]:
    return dataclasses.asdict(c)  # holds no secret, only whether one is stored


def provisioned_dict(p: services.Provisioned | None) -> dict[str, Any] | None:
    return None if p is None else dataclasses.asdict(p)


def print_connection(c: Connection) -> None:
    print(f"connection {c.id}: {visible(c.name)}")  # a name is data: it may hold escapes
    partner = cc.services().partner_names().get(c.partner_id or 0, "-")
    delimiter = {"\t": "tab", ",": ","}.get(c.delimiter, repr(c.delimiter))
    archive = c.archive_folder
    mapping = ", ".join(f"{k} -> {v}" for k, v in c.column_map.items()) or "-"
    cc.fields(
        [
            ("partner", cc.one_line(partner)),
            ("data type", c.data_type),
            ("direction", Direction(c.direction).value),
            ("method", METHOD_LABELS[Method(c.method)]),
            ("methodology", METHODOLOGY_LABELS[Methodology(c.methodology)]),
            ("host", f"{c.host or '-'}" + (f":{c.port}" if c.port else "")),
            ("folder", c.folder or "-"),
            ("pattern", c.pattern),
            ("return e-mail", c.return_email or "-"),
            ("schedule", c.schedule or "-"),
            ("lock period", cc.count(c.lock_days, "day")),
            ("late events", LATE_WORDS[LateEvents(c.late_events)]),
            ("min file age", f"{c.min_age_seconds} s"),
            ("time zone", c.timezone),
            ("encoding", c.encoding or "UTF-8 (default)"),
            ("delimiter", delimiter),
            ("after success", c.after_success + (f" to {c.archive_folder}" if archive else "")),
            ("column map", mapping),
            ("re-delivery", c.redelivery),
            ("catalog mode", c.catalog_mode),
            ("export sources", ", ".join(str(i) for i in c.export_sources) or "-"),
            ("expected delivery", expectation(c)),
            ("alerts go to", c.owner_email or "the partner's return address"),
            ("status sync-back", ", ".join(c.sync_back) or "off"),
            (
                "status words",
                ", ".join(f"{k} -> {cc.one_line(v)}" for k, v in c.status_words.items()) or "default",
            ),
            ("transfer settings", transfer_flags.describe(c.transfer)),
            ("status", f"{c.status.shown.value}{review_flag(c)} (last active {cc.when(c.last_active)})"),
            ("created", cc.when(c.created_at)),
            ("updated", cc.when(c.updated_at)),
        ]
    )


def expectation(c: Connection) -> str:
    if not c.expect and c.volume_tolerance is None:
        return "- (not watched)"
    when = f"{c.expect}, grace {c.expect_grace_minutes} min" if c.expect else "no cadence"
    volume = f"rows within ±{c.volume_tolerance} %" if c.volume_tolerance is not None else "rows not checked"
    return f"{when}; {volume}"


LATE_WORDS = {
    LateEvents.LOCK: "lock (an event past the lock period makes a LOCKED action)",
    LateEvents.REFUSE: "refuse (an event past the lock period is rejected)",
}


def print_credentials(creds: Sequence[Credential]) -> None:
    if not creds:
        print("credentials: none")
        return
    print("credentials:")
    rows = [
        [
            "main" if c.is_main else "secondary",
            c.name,
            c.kind,
            c.username or "-",
            "stored" if c.has_secret else "-",
            c.status + (f": {cc.one_line(c.last_error, 40)}" if c.last_error else ""),
            c.return_email or "-",
            cc.when(c.created_at),
        ]
        for c in creds
    ]
    headers = ["ROLE", "NAME", "KIND", "USERNAME", "SECRET", "STATUS", "RETURN E-MAIL", "CREATED"]
    cc.table(headers, rows, indent="  ")
    for c in creds:
        if len(c.used_by) > 1:
            print(f"  credential {c.id} is shared by: {', '.join(cc.one_line(n) for n in c.used_by)}")


def print_provisioned(p: services.Provisioned) -> None:
    print()
    if p.email_address:  # the partner only mails to it: no login of ours is used by e-mail push
        print("The partner sends its files to this address.")
        cc.fields([("e-mail address", p.email_address)])
        return
    print("Login for the partner. Copy it now: it will not be shown again.")
    pairs = [("host", p.host)]
    if p.port is not None:
        pairs.append(("port", str(p.port)))
    pairs += [("username", p.username), ("password", p.password)]
    if p.host_key_fingerprint:
        pairs.append(("host key", f"{p.host_key_fingerprint} (the partner checks it on first login)"))
    if p.certificate_fingerprint:
        pairs.append(("certificate", p.certificate_fingerprint))
    if p.connect_with:
        pairs.append(("connect with", p.connect_with))
    cc.fields(pairs)
