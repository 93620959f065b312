"""The `connectbatch triage` command: what locks in the next N days and still needs a person
(quarantined batches, reject spikes, refused change requests, actions of connections whose
last file failed), by partner, most urgent first.

    connectbatch triage [--days N] [--json]
"""

from __future__ import annotations

import argparse

from connectbatch import triage
from connectbatch.cli import common as cc
from connectbatch.cli.common import EXIT_OK, PROG, Command

# What to do about each kind of item, from the command line.
_NEXT = {
    triage.TriageKind.QUARANTINED: f"{PROG} quarantine release|discard {{run}}",
    triage.TriageKind.REJECT_SPIKE: f"{PROG} rejects {{run}}",
    triage.TriageKind.REFUSED_CHANGE: f"{PROG} action modify|reverse {{action}}",
    triage.TriageKind.FAILED_CONNECTION: f"{PROG} retry {{run}}",
}
# A file refused for its content fails a retry the same way (triage.refused_for_content).
_RESEND = "the partner fixes the file and sends it again (or: map its columns on the connection, then retry)"


def _next(item: triage.TriageItem) -> str:
    if item.resend:
        return _RESEND
    return _NEXT[item.kind].format(run=item.run_id, action=f"A-{item.action_id or 0:06d}")


def _configure_triage(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--days", type=cc.within(1, triage.MAX_DAYS), default=triage.DEFAULT_DAYS, metavar="N",
        help=f"what locks within N days from now, 1 to {triage.MAX_DAYS} (default: {triage.DEFAULT_DAYS})",
    )  # fmt: skip
    cc.json_flag(p)


def _run_triage(args: argparse.Namespace) -> int:
    found = cc.services().triage(args.days)
    if args.json:
        cc.print_json(found.as_dict())
        return EXIT_OK
    if not found.groups:
        print(f"nothing locks within {cc.count(found.days, 'day')} that needs a person")
        return EXIT_OK
    for group in found.groups:
        print(f"{cc.one_line(group.partner)} ({cc.count(len(group.items), 'item')})")
        rows = [
            [
                triage.time_left_text(i.deadline, found.now), cc.when(i.deadline), i.label,
                cc.one_line(i.connection, 40), cc.one_line(i.detail, 90),
                _next(i),
            ]
            for i in group.items
        ]  # fmt: skip
        cc.table(["TIME LEFT", "LOCKS", "KIND", "CONNECTION", "WHAT", "NEXT"], rows, indent="  ")
    return EXIT_OK


COMMANDS: dict[str, Command] = {
    "triage": Command(
        "what locks in the next N days and still needs a person", _configure_triage, _run_triage
    ),
}
