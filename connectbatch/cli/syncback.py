"""The `connectbatch syncback` command: report an inbound connection's status changes now.

    connectbatch syncback N [--json]

Sends what changed since its last sync-back (rows accepted, rejected, released or discarded,
actions modified, reversed or locked) on each channel it has on: a status file in its
partner's Pull-from-us folder (`files`) and/or an e-mail to its return address (`email`).
Each change goes out once per channel (the watermark is in the database). Nothing new: no
file, exit 0.
"""

from __future__ import annotations

import argparse
import dataclasses

from connectbatch.cli import common as cc
from connectbatch.cli.common import EXIT_OK, Command


def _configure_syncback(p: argparse.ArgumentParser) -> None:
    p.add_argument("connection", metavar="N", help="inbound connection name or id")
    cc.json_flag(p)


def _run_syncback(args: argparse.Namespace) -> int:
    svc = cc.services()
    connection = svc.connection(args.connection)
    done = svc.sync_back_now(connection.id, trigger="cli")
    if args.json:
        cc.print_json(
            {
                "connection": connection.id,
                "sent": [dataclasses.asdict(s) for s in done.sent],
                "skipped": done.skipped,
                "paths": [str(p) for p in done.paths],
            }
        )
        return EXIT_OK
    for channel, why in done.skipped.items():
        print(f"{channel}: nothing sent: {why}")
    if not done.sent:
        print(f"no status changes to report for {cc.one_line(connection.name)}")
        return EXIT_OK
    for s in done.sent:
        where = f" to {cc.one_line(s.recipient)}" if s.recipient else ""
        print(f"sync-back {s.id} ({s.channel}{where}): {s.rows:,} status rows in {s.file_name}")
    if done.paths:
        cc.fields([("file", str(p)) for p in done.paths])
    return EXIT_OK


COMMANDS: dict[str, Command] = {
    "syncback": Command("report status changes back to the partner now", _configure_syncback, _run_syncback),
}
