"""The `connectbatch export` command: export now for an outbound ("Pull from us") connection.

    connectbatch export N [--json]

Writes what the connection has not exported yet (rows loaded since its last export and rows
whose action changed status since), only from its partner's inbound connections, into its
outbound folder, and records it in the export ledger. Nothing new: no file, exit 0.
"""

from __future__ import annotations

import argparse
import dataclasses

from connectbatch.cli import common as cc
from connectbatch.cli.common import EXIT_OK, Command


def _configure_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("connection", metavar="N", help="outbound connection name or id")
    cc.json_flag(p)


def _run_export(args: argparse.Namespace) -> int:
    svc = cc.services()
    connection = svc.connection(args.connection)
    done = svc.export_now(connection.id, trigger="cli")
    folder = svc.settings.outbound / str(connection.id)
    if args.json:
        payload = None
        if done is not None:
            payload = {**dataclasses.asdict(done), "path": folder / (done.file_name or "")}
        cc.print_json({"connection": connection.id, "export": payload})
        return EXIT_OK
    if done is None:
        print(f"nothing new to export for {cc.one_line(connection.name)}")
        return EXIT_OK
    print(
        f"export {done.id} of {cc.one_line(connection.name)}: {done.rows:,} rows "
        f"({done.new_rows:,} newly loaded, {done.changes:,} status changes)"
    )
    cc.fields([("file", str(folder / (done.file_name or "")))])
    return EXIT_OK


COMMANDS: dict[str, Command] = {
    "export": Command("export now for an outbound connection", _configure_export, _run_export),
}
