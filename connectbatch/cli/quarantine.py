"""The `connectbatch quarantine` command: list the runs held for review, and release (load as
it is) or discard a quarantined batch.

    connectbatch quarantine list | release RUN_ID [--note T] | discard RUN_ID [--note T]
"""

from __future__ import annotations

import argparse

from connectbatch.cli import common as cc
from connectbatch.cli.common import EXIT_OK, PROG, Command


def _quarantine_list(args: argparse.Namespace) -> int:
    svc = cc.services()
    runs = svc.quarantined()
    names = cc.connection_names(svc)
    files = {r.id: svc.run_files(r.id) for r in runs}
    if args.json:
        cc.print_json(
            [{**cc.run_dict(r, names), "files": [cc.file_dict(f) for f in files[r.id]]} for r in runs]
        )
        return EXIT_OK
    if not runs:
        print("nothing is quarantined")
        return EXIT_OK
    rows = [
        [
            str(r.id),
            cc.connection_name(names, r.connection_id),
            cc.when(r.started_at),
            ", ".join(f.name for f in files[r.id] if f.state == "quarantined") or "-",
            f"{sum(f.rows_accepted for f in files[r.id] if f.state == 'quarantined'):,}",
            cc.one_line(r.reason, 80),
        ]
        for r in runs
    ]
    cc.table(["RUN", "CONNECTION", "STARTED", "FILES", "ROWS WAITING", "REASON"], rows,
           right=[0, 4])  # fmt: skip
    print(f"release or discard with `{PROG} quarantine release|discard RUN_ID`")
    return EXIT_OK


def _quarantine_release(args: argparse.Namespace) -> int:
    svc = cc.services()
    run = svc.release(args.run_id, args.note, cc.actor(args))
    cc.show_run_result(run, svc, args)
    return EXIT_OK


def _quarantine_discard(args: argparse.Namespace) -> int:
    svc = cc.services()
    run = svc.discard(args.run_id, args.note, cc.actor(args))
    cc.show_run_result(run, svc, args)
    return EXIT_OK


def _configure_quarantine(p: argparse.ArgumentParser) -> None:
    sub = cc.subcommands(p)
    cc.json_flag(cc.leaf(sub, "list", "list the runs waiting for review", _quarantine_list))
    for name, help_text, handler in (
        ("release", "load a quarantined batch as it is", _quarantine_release),
        ("discard", "drop a quarantined batch", _quarantine_discard),
    ):
        leaf = cc.leaf(sub, name, help_text, handler)
        leaf.add_argument("run_id", type=cc.run_id, metavar="RUN_ID")
        leaf.add_argument("--note", metavar="T", help="why (kept with the run)")
        leaf.add_argument("--actor", metavar="WHO", help="reviewer (default: your user name)")
        cc.json_flag(leaf)


COMMANDS: dict[str, Command] = {
    "quarantine": Command("list, release or discard quarantined batches", _configure_quarantine,
                          cc.dispatch),
}  # fmt: skip
