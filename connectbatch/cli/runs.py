"""The run commands of `connectbatch`: ingest a file, list and show runs, list a run's rejected
rows, and retry a failed run.

    connectbatch ingest FILE [FILE ...] --connection N
    connectbatch runs [--connection N] [--limit K]
    connectbatch run show RUN_ID
    connectbatch rejects RUN_ID [--limit K]
    connectbatch retry RUN_ID
    connectbatch cleanup
    connectbatch history [--connection N] [--limit K]

`ingest` and `retry` exit with 1 when the run they started ended Failed (a rejected file)
or Needs review (a quarantined batch): the command worked, the file did not load. Several
files given to `ingest` are each a run of their own, committed as a group (one commit for
their ledger entries, one for their loads: pipeline/group.py); it exits with 1 when any of
them did not load, and `--json` prints a list of runs.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from connectbatch import services
from connectbatch.cli import common as cc
from connectbatch.cli.common import EXIT_OK, EXIT_RUN_FAILED, Command
from connectbatch.errors import ConfigurationError
from connectbatch.escaping import visible
from connectbatch.models import FileRecord, RejectRow
from connectbatch.store.events import ConnectionEvent


def _configure_ingest(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="+", help="CSV file(s) to ingest (.csv, .csv.gz, single-member .zip)")
    p.add_argument("--connection", required=True, metavar="N", help="connection name or id")
    cc.json_flag(p)


def _utf8_names(files: Sequence[str]) -> None:
    """A file's name goes into the ledger as text; one that is not UTF-8 (latin-1 bytes, as a
    partner's zip or an old Windows share leaves them) ended in an internal error from the
    store after the run had started. Refused first, saying which file and how it reads."""
    for file in files:
        name = Path(file).name
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            latin1 = name.encode("utf-8", "surrogateescape").decode("latin-1")
            raise ConfigurationError(
                f"the name of {file!r} is not UTF-8 (as Latin-1 it reads {latin1!r}): "
                "rename the file and ingest it again"
            ) from None


def _run_ingest(args: argparse.Namespace) -> int:
    _utf8_names(args.file)
    svc = cc.services()
    if len(args.file) == 1:
        run = svc.ingest_file(args.connection, args.file[0], trigger="cli")
        cc.show_run_result(run, svc, args)
        return EXIT_RUN_FAILED if run.status in cc.NOT_LOADED else EXIT_OK
    runs = svc.ingest_files(args.connection, args.file, trigger="cli")
    if args.json:
        names = cc.connection_names(svc)
        cc.print_json(
            [{**cc.run_dict(r, names), "files": [cc.file_dict(f) for f in svc.run_files(r.id)]} for r in runs]
        )
    else:
        for run in runs:
            cc.show_run_result(run, svc, args)
    return EXIT_RUN_FAILED if any(r.status in cc.NOT_LOADED for r in runs) else EXIT_OK


def _configure_runs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--connection", metavar="N", help="only this connection's runs")
    p.add_argument("--limit", type=cc.positive, default=50, metavar="K",
                   help="newest K runs (default: 50)")  # fmt: skip
    cc.json_flag(p)


def _run_runs(args: argparse.Namespace) -> int:
    svc = cc.services()
    runs = svc.runs(args.connection, args.limit)
    names = cc.connection_names(svc)
    if args.json:
        cc.print_json([cc.run_dict(r, names) for r in runs])
        return EXIT_OK
    if not runs:
        print("no runs yet")
        return EXIT_OK
    rows = [
        [
            str(r.id),
            cc.connection_name(names, r.connection_id),
            r.trigger,
            cc.run_status(r),
            cc.when(r.started_at),
            f"{r.rows_accepted:,}",
            f"{r.rows_rejected:,}",
            f"{r.rows_duplicate:,}",
            f"{r.actions_created:,}",
            f"{r.actions_changed:,}",
            cc.one_line(r.reason, 60),
        ]
        for r in runs
    ]
    # rows accepted, rejected, duplicate; then actions created and (existing ones) changed
    headers = ["RUN", "CONNECTION", "TRIGGER", "STATUS", "STARTED", "ACCEPTED", "REJECTED",
               "DUPLICATES", "CREATED", "CHANGED", "REASON"]  # fmt: skip
    cc.table(headers, rows, right=[0, 5, 6, 7, 8, 9])
    return EXIT_OK


def _validation_dicts(svc: services.Services, run_id: int) -> list[dict[str, Any]]:
    out = []
    for file_id, report in svc.validation(run_id):
        out.append(
            {
                "file_id": file_id,
                "success": report.success,
                "critical_failures": report.critical_failures,
                "warnings": report.warnings,
                "rows_accepted": report.rows_accepted,
                "rows_rejected": report.rows_rejected,
                "validated_at": report.validated_at,
                "outcomes": [
                    {
                        "name": o.name,
                        "severity": o.severity,
                        "success": o.success,
                        "summary": o.summary(),
                        "observed_value": o.observed_value,
                        "unexpected_sample": o.unexpected_sample,
                        "unexpected_lines": o.unexpected_lines,
                        "lines": o.lines_text(),
                    }
                    for o in report.outcomes
                ],
            }
        )
    return out


def _print_validation(checks: Sequence[dict[str, Any]], files: Sequence[FileRecord]) -> None:
    file_names = {f.id: f.name for f in files}
    if not checks:
        print("validation: none stored (the file was not parsed, or was a duplicate)")
        return
    for check in checks:
        outcomes: list[dict[str, Any]] = check["outcomes"]
        verdict = "passed" if check["success"] else "FAILED"
        print(
            f"validation of file {check['file_id']} ({visible(file_names.get(check['file_id'], '?'))}): "
            f"{verdict}; {cc.count(len(check['critical_failures']), 'critical failure')}, "
            f"{cc.count(len(check['warnings']), 'warning')}, {cc.count(len(outcomes), 'expectation')}"
        )
        for o in outcomes:
            if not o["success"]:
                print(f"  FAIL  {o['severity']:<8}  {visible(o['name'])}: {cc.one_line(o['summary'])}")
                if o.get("unexpected_lines"):
                    print(f"        at line{'s' if len(o['unexpected_lines']) > 1 else ''} {o['lines']}")
        passed = sum(o["success"] for o in outcomes)
        if passed:
            print(f"  ok    {cc.count(passed, 'expectation')} met")


def _configure_run(p: argparse.ArgumentParser) -> None:
    sub = cc.subcommands(p)
    show = cc.leaf(sub, "show", "show a run, its files and its validation", _run_show)
    show.add_argument("run_id", type=cc.run_id, metavar="RUN_ID")
    cc.json_flag(show)


def _run_show(args: argparse.Namespace) -> int:
    svc = cc.services()
    run = svc.run(args.run_id)
    files = svc.run_files(run.id)
    checks = _validation_dicts(svc, run.id)
    names = cc.connection_names(svc)
    # a run taken in again at a start (a push upload) is retried already: said, as the app does
    retried = svc.retried_as(run.id)
    if args.json:
        cc.print_json(
            {**cc.run_dict(run, names), "retried_as": retried.id if retried else None,
             "files": [cc.file_dict(f) for f in files], "validation": checks}
        )  # fmt: skip
        return EXIT_OK
    cc.print_run(run, names, retried)
    cc.print_files(files)
    _print_validation(checks, files)
    return EXIT_OK


def _configure_rejects(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", type=cc.run_id, metavar="RUN_ID")
    p.add_argument("--limit", type=cc.positive, default=100, metavar="K",
                   help="show the first K rejects (default: 100)")  # fmt: skip
    cc.json_flag(p)


def _reject_dict(r: RejectRow, names: dict[int, str]) -> dict[str, Any]:
    return {**dataclasses.asdict(r), "file": names.get(r.file_id)}


def _run_rejects(args: argparse.Namespace) -> int:
    svc = cc.services()
    rejects = svc.rejects(args.run_id, args.limit)
    # the file a row is in, by name (it showed its number only): a run of a pull has several
    names = {f.id: f.name for f in svc.run_files(args.run_id)} if rejects else {}
    if args.json:
        cc.print_json([_reject_dict(r, names) for r in rejects])
        return EXIT_OK
    if not rejects:
        print(f"run {args.run_id} has no rejected rows")
        return EXIT_OK
    rows = [
        [
            names.get(r.file_id, str(r.file_id)),
            str(r.line),
            "-" if r.shown_key is None else repr(r.shown_key),
            r.column or "-",
            "-" if r.value is None else repr(r.value),  # repr: blanks and newlines show
            r.reason,
        ]
        for r in rejects
    ]
    cc.table(["FILE", "LINE", "KEY", "COLUMN", "VALUE", "REASON"], rows, right=[1])
    if len(rejects) == args.limit:
        print(f"(first {args.limit}; use --limit to see more)")
    return EXIT_OK


def _configure_retry(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", type=cc.run_id, metavar="RUN_ID", help="a Failed run")
    cc.json_flag(p)


def _run_retry(args: argparse.Namespace) -> int:
    svc = cc.services()
    svc.startup()  # a run a dead process left In Progress becomes Failed, so retriable
    run = svc.retry(args.run_id)
    cc.show_run_result(run, svc, args)
    return EXIT_RUN_FAILED if run.status in cc.NOT_LOADED else EXIT_OK


def _configure_cleanup(p: argparse.ArgumentParser) -> None:
    cc.json_flag(p)


def _run_cleanup(args: argparse.Namespace) -> int:
    """Staged raw files past CONNECTBATCH_STAGING_RETENTION_DAYS go (not those of quarantined
    or in-progress runs); each removal is recorded in the store."""
    svc = cc.services()
    removed = svc.ingestor.cleanup_staging()
    if args.json:
        cc.print_json([dataclasses.asdict(r) for r in removed])
        return EXIT_OK
    days = svc.settings.staging_retention_days
    if days <= 0:  # 0 keeps every staged file (pipeline.staging.cleanup removes nothing)
        print("nothing removed: staged files are kept (CONNECTBATCH_STAGING_RETENTION_DAYS is 0)")
        return EXIT_OK
    print(f"removed {cc.count(len(removed), 'staged file')} unused for more than {days} days")
    for r in removed:
        print(f"  {r.sha256}  {r.size:,} bytes  last used {cc.when(r.last_used_at)}")
    return EXIT_OK


def _configure_history(p: argparse.ArgumentParser) -> None:
    p.add_argument("--connection", metavar="N", help="only this connection's history")
    p.add_argument("--limit", type=cc.positive, default=50, metavar="K",
                   help="newest K events (default: 50)")  # fmt: skip
    cc.json_flag(p)


def _event_dict(e: ConnectionEvent, names: dict[int, str]) -> dict[str, Any]:
    return {**dataclasses.asdict(e), "connection": cc.connection_name(names, e.connection_id)}


def _run_history(args: argparse.Namespace) -> int:
    """What happened to a connection besides its runs: mails that brought nothing (and
    whether the sender was told), scheduled triggers skipped while a run was going."""
    svc = cc.services()
    events = svc.connection_events(args.connection, args.limit)
    names = cc.connection_names(svc)
    if args.json:
        cc.print_json([_event_dict(e, names) for e in events])
        return EXIT_OK
    if not events:
        print("no history besides runs")
        return EXIT_OK
    rows = [
        [
            cc.when(e.last_at),
            cc.connection_name(names, e.connection_id),
            e.kind,
            str(e.count),
            "yes" if e.answered else "-",
            cc.one_line(e.message, 120),
        ]
        for e in events
    ]
    cc.table(["WHEN", "CONNECTION", "KIND", "TIMES", "ANSWERED", "WHAT"], rows, right=[3])
    return EXIT_OK


COMMANDS: dict[str, Command] = {
    "ingest": Command("run files through a connection's pipeline, each its own run", _configure_ingest,
                      _run_ingest),
    "runs": Command("list the run history", _configure_runs, _run_runs),
    "run": Command("show one run (run show ID), or pull now (run N)", _configure_run, cc.dispatch),
    "rejects": Command("list a run's rejected rows", _configure_rejects, _run_rejects),
    "retry": Command("run a failed run's files again", _configure_retry, _run_retry),
    "cleanup": Command("remove staged raw files past their retention", _configure_cleanup,
                       _run_cleanup),
    "history": Command("list a connection's history besides runs (mails, skipped triggers)",
                       _configure_history, _run_history),
}  # fmt: skip
