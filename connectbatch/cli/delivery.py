"""The `connectbatch delivery` command: expected delivery per inbound connection.

    connectbatch delivery [--connection N] [--check] [--json]

Shows each inbound connection's expected cadence (set with `connection edit N --expect
'daily by 06:00' --grace 2h --volume-tolerance 30`), the cadence learned from its files (a
suggestion, with its confidence), its usual rows per file and its open alerts. `--check` runs
the check the engine runs every few minutes first (alerts raised are e-mailed to the owner).
"""

from __future__ import annotations

import argparse
from typing import Any

from connectbatch.cli import common as cc
from connectbatch.cli.common import EXIT_OK, Command
from connectbatch.models import Direction
from connectbatch.services.delivery import DeliveryStatus
from connectbatch.store.delivery import Alert


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--connection", metavar="N", help="one connection (name or id); default: every inbound one"
    )
    p.add_argument("--check", action="store_true", help="check now and raise or clear alerts first")
    cc.json_flag(p)


def _alert_dict(a: Alert) -> dict[str, Any]:
    return {
        "id": a.id, "kind": a.kind, "raised_at": a.raised_at, "cleared_at": a.cleared_at,
        "message": a.message, "notified": a.notified,
    }  # fmt: skip


def _status_dict(s: DeliveryStatus) -> dict[str, Any]:
    c = s.connection
    suggestion = s.suggestion
    return {
        "id": c.id,
        "name": c.name,
        "expect": c.expect,
        "grace_minutes": c.expect_grace_minutes,
        "volume_tolerance": c.volume_tolerance,
        "timezone": c.timezone,
        "owner": s.owner,
        "suggestion": None
        if suggestion is None
        else {
            "expect": suggestion.expect,
            "confidence": suggestion.confidence,
            "days_seen": suggestion.days_seen,
            "reason": suggestion.reason,
        },
        "usual_rows": s.usual_rows,
        "open_alerts": [_alert_dict(a) for a in s.open_alerts],
    }


def _print(s: DeliveryStatus) -> None:
    c = s.connection
    print(f"connection {c.id}: {cc.one_line(c.name)}")
    learned = (
        f"{s.suggestion.expect} (confidence {s.suggestion.confidence:.0%}; {s.suggestion.reason})"
        if s.suggestion is not None
        else "- (fewer than 3 days with a file)"
    )
    cc.fields(
        [
            (
                "expected",
                f"{c.expect}, grace {c.expect_grace_minutes} min ({c.timezone})" if c.expect else "-",
            ),
            ("learned", learned),
            ("usual rows", str(s.usual_rows) if s.usual_rows is not None else "-"),
            ("volume tolerance", f"±{c.volume_tolerance} %" if c.volume_tolerance is not None else "-"),
            ("alerts go to", cc.one_line(s.owner)),
            ("open alerts", str(len(s.open_alerts)) if s.open_alerts else "none"),
        ]
    )
    for a in s.open_alerts:
        print(f"    {a.kind:<13} since {cc.when(a.raised_at)}: {cc.one_line(a.message)}")


def _run(args: argparse.Namespace) -> int:
    svc = cc.services()
    if args.check:
        svc.check_deliveries()
    if args.connection is not None:
        chosen = [svc.connection(args.connection)]
    else:
        chosen = [c for c in svc.connections() if c.direction is Direction.INBOUND]
    statuses = [svc.delivery_status(c.id) for c in chosen]
    if args.json:
        cc.print_json({"connections": [_status_dict(s) for s in statuses]})
        return EXIT_OK
    if not statuses:
        print("no inbound connections")
    for s in statuses:
        _print(s)
    return EXIT_OK


COMMANDS: dict[str, Command] = {
    "delivery": Command("expected delivery: cadence, learned suggestion, open alerts", _configure, _run),
}
