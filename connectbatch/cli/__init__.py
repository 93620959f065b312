"""The `connectbatch` command line: one function per subcommand, listed in COMMANDS.

    connectbatch parse FILE [--type T] [--encoding E] [--delimiter D] [--timezone TZ]
                            [--max-rejects N] [--json]
    connectbatch types [--json]
    connectbatch template TYPE
    connectbatch demo [--dir DIR]

and the commands of the other `cli_*` modules: `cli_connections` (connection), `cli_runs`
(ingest, runs, run show, rejects, retry), `cli_actions` (actions, action, lock),
`cli_quarantine` (quarantine), `cli_engine` (pull, also spelled `run N`; serve;
credentials) and `cli_users` (user). `cli_common` holds what they share.

A later subcommand is one `Command` entry: a function that adds its arguments and a function
that runs it and returns the exit code. Exit codes: 0 done (rejected rows are a normal
outcome, not a failure), 1 an ingest, retry or pull whose run ended Failed or Needs review
(nothing loaded), 2 the input or an option is unusable, 75 busy: the database is locked or
the connection has a run in progress (try again later), 3 an unexpected internal error.
Expected problems, usage errors included, are reported as one `connectbatch: error: ...` line
on stderr, never as a traceback (CONNECTBATCH_DEBUG=1 shows the traceback of an internal error).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import random
import shlex
import shutil
import stat
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from connectbatch import __version__, escaping, schemas
from connectbatch.cli import actions as cli_actions
from connectbatch.cli import common as cli_common
from connectbatch.cli import connections as cli_connections
from connectbatch.cli import delivery as cli_delivery
from connectbatch.cli import engine as cli_engine
from connectbatch.cli import exports as cli_exports
from connectbatch.cli import partners as cli_partners
from connectbatch.cli import quarantine as cli_quarantine
from connectbatch.cli import runs as cli_runs
from connectbatch.cli import syncback as cli_syncback
from connectbatch.cli import triage as cli_triage
from connectbatch.cli import users as cli_users
from connectbatch.cli import worker as cli_worker
from connectbatch.cli.common import EXIT_OK, EXIT_RUN_FAILED, EXIT_UNUSABLE, PROG, Command
from connectbatch.errors import ConfigurationError, ConnectBatchError
from connectbatch.parser import api as csvparse
from connectbatch.settings import debug_enabled

__all__ = ["COMMANDS", "EXIT_OK", "EXIT_RUN_FAILED", "EXIT_UNUSABLE", "Command", "main"]

EXIT_INTERNAL = 3
RAW_TYPE = "raw"  # `--type raw`: the header's own columns, all text
DEMO_FILE = "call_conversions_demo.csv"


# ---------------------------------------------------------------------------------- parse


def _configure_parse(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="CSV file; .csv.gz and single-member .zip are unpacked")
    p.add_argument(
        "--type",
        default="call_conversions",
        metavar="T",
        help=f"data type (see `{PROG} types`), or {RAW_TYPE!r} for the header's own columns "
        "as text (default: call_conversions)",
    )
    p.add_argument(
        "--encoding",
        metavar="E",
        help="source encoding when there is no byte-order mark, e.g. latin-1 or cp1252 (default: UTF-8)",
    )
    p.add_argument(
        "--delimiter", default=",", metavar="D", help="field delimiter; 'tab' for tabs (default: ,)"
    )
    p.add_argument(
        "--timezone",
        default="UTC",
        metavar="TZ",
        help="IANA time zone of dates written without Z or an offset (default: UTC)",
    )
    p.add_argument(
        "--max-rejects",
        type=cli_common.non_negative,
        default=20,
        metavar="N",
        help="show at most N rejects, also in --json (default: 20)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    # Which parser core runs; the tests use it to compare both. Not for users.
    p.add_argument("--engine", choices=("cython", "python"), default="cython", help=argparse.SUPPRESS)


def _run_parse(args: argparse.Namespace) -> int:
    data_type: str | None = None if args.type == RAW_TYPE else args.type
    if data_type is not None:
        schemas.get(data_type)  # an unknown type is an option error, before the file is read
    timezone = csvparse.check_timezone(args.timezone)
    delimiter = "\t" if args.delimiter in ("tab", "\\t") else args.delimiter
    _seekable_file(args.file)
    started = time.perf_counter()
    result = csvparse.parse_file(
        args.file,
        data_type,
        encoding=args.encoding,
        delimiter=delimiter,
        timezone=timezone,
        engine=args.engine,
    )
    seconds = time.perf_counter() - started
    report = _parse_report(args.file, args.type, result, seconds, args.max_rejects)
    if args.json:
        print(json.dumps(report))
    else:
        _print_parse_report(report)
    return EXIT_OK


def _seekable_file(path: str) -> None:
    """The parser reads a file more than once (its start for the encoding and the header, an
    archive's index at its end): a pipe (`parse <(zcat x.gz)`) or a device ended in "File or
    stream is not seekable.", naming neither the file nor what to do. A path that does not
    exist is left to the parser, which says so."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        what = "a pipe" if stat.S_ISFIFO(mode) else "not a regular file (a device or a socket)"
        raise ConfigurationError(
            f"cannot parse {path}: it is {what}; save it to a file first (e.g. zcat x.gz > x.csv)"
        )


def _parse_report(
    file: str, data_type: str, result: csvparse.ParseResult, seconds: float, max_rejects: int
) -> dict[str, Any]:
    return {
        "file": file,
        "data_type": data_type,
        "encoding": result.encoding,
        "rows_accepted": result.rows_accepted,
        "rows_rejected": result.rows_rejected,
        "reject_count": len(result.rejects),
        "rejects": [
            {"line": r.line, "column": r.column, "value": r.value, "reason": r.reason}
            for r in result.rejects[:max_rejects]
        ],
        "unknown_columns": list(result.unknown_columns),
        "seconds": round(seconds, 6),
    }


def _print_parse_report(report: dict[str, Any]) -> None:
    """The report as text. The file's name, its header's columns and the reasons (which quote
    values) are the partner's: escaped, so a name or header holding an escape sequence cannot
    drive the terminal of the person checking the file (they were printed as they were)."""
    unknown = escaping.visible(", ".join(report["unknown_columns"])) or "none"
    name, data_type = escaping.visible(report["file"]), escaping.visible(report["data_type"])
    print(f"{name} ({data_type}, {report['encoding']})")
    print(f"rows accepted    {report['rows_accepted']:,}")
    print(f"rows rejected    {report['rows_rejected']:,}")
    print(f"rejects          {report['reject_count']:,}")
    print(f"unknown columns  {unknown}")
    print(f"seconds          {report['seconds']:.3f}")
    shown: list[dict[str, Any]] = report["rejects"]
    if not shown:
        return
    print()
    print(f"first {len(shown)} of {report['reject_count']:,} rejects:")
    rows = [
        (
            str(r["line"]),
            escaping.visible(r["column"] or "-"),
            "-" if r["value"] is None else repr(r["value"]),  # repr: blanks and newlines show
            escaping.visible(r["reason"]),
        )
        for r in shown
    ]
    widths = [max(len(row[i]) for row in [("LINE", "COLUMN", "VALUE", ""), *rows]) for i in range(3)]
    for line, column, value, reason in [("LINE", "COLUMN", "VALUE", "REASON"), *rows]:
        print(f"  {line:>{widths[0]}}  {column:<{widths[1]}}  {value:<{widths[2]}}  {reason}")


# ---------------------------------------------------------------------- types and template


def _configure_types(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print a JSON list")


def _run_types(args: argparse.Namespace) -> int:
    types = list(schemas.REGISTRY.values())
    if args.json:
        entries = [
            {
                "key": dt.key,
                "label": dt.label,
                "columns": len(dt.columns),
                "required": len(dt.required_columns),
                "description": dt.description,
            }
            for dt in types
        ]
        print(json.dumps(entries))
        return EXIT_OK
    width = max(len(dt.key) for dt in types)
    for dt in types:
        counts = f"{len(dt.columns)} columns, {len(dt.required_columns)} required"
        print(f"{dt.key:<{width}}  {dt.label} ({counts}): {dt.description}")
    return EXIT_OK


def _configure_template(p: argparse.ArgumentParser) -> None:
    p.add_argument("type", help=f"data type (see `{PROG} types`)")


def _run_template(args: argparse.Namespace) -> int:
    sys.stdout.write(schemas.get(args.type).template_csv())
    return EXIT_OK


# ------------------------------------------------------------------------------------ demo


def _configure_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dir",
        type=Path,
        help="folder to write to (default: $CONNECTBATCH_HOME/demo, CONNECTBATCH_HOME defaulting to ./data)",
    )


def _run_demo(args: argparse.Namespace) -> int:
    from connectbatch import demo

    services = cli_common.services()  # a data directory that cannot be used is named first
    settings = services.settings
    folder: Path = args.dir or settings.home / "demo"
    path = folder / DEMO_FILE
    sample = demo.call_file(random.Random(1), datetime.datetime.now(datetime.UTC), 50, "demo", broken=6)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(sample)
    except OSError as exc:  # a bare "[Errno 20] Not a directory: 'x/demo'" named no option
        why = "it is a file, not a folder" if folder.is_file() else exc.strerror or str(exc)
        raise ConfigurationError(f"cannot write the demo file into {folder}: {why}") from None
    print(f"wrote 50 call-conversion rows (6 with deliberate mistakes) to {escaping.visible(str(path))}")
    print(f"try: {PROG} parse {escaping.visible(shlex.quote(str(path)))}")
    logins = demo.users(services)
    if logins:
        print(f"app logins (passwords shown once; add more with `{PROG} user add`):")
        for name, (role, password) in logins.items():
            print(f"  {name:<9} {role:<16} password {password}")
    else:
        print(f"the demo app logins exist already ({', '.join(demo.DEMO_USERS)}; `{PROG} user list`)")
    loaded = demo.load(services)
    if not loaded.created:
        print(f"the demo connections are already in {escaping.visible(str(settings.database))}")
    else:
        print(f"created {len(loaded.created)} demo connections and {len(loaded.runs)} runs")
        print(f"database: {escaping.visible(str(settings.database))}")
    for name, login in loaded.provisioned.items():
        if login.email_address:  # the partner only mails to it: no login of ours to show
            print(f"  {name}: the partner mails its files to {login.email_address}")
            continue
        where = f"{login.host}:{login.port}"
        print(f"  {name}: {where} user {login.username} password {login.password} (shown once)")
    if not logins:  # the first run alone showed them: a second `make run` left no way in
        print(f"to log in, set a new password for a demo login: `{PROG} user password admin`")
    script = _not_on_path()
    if script is not None:
        shown = escaping.visible(str(script))
        activate = escaping.visible(shlex.quote(str(script.parent / "activate")))
        print(f"(`{PROG}` is {shown}: `source {activate}` puts it on PATH)")
    return EXIT_OK


def _not_on_path() -> Path | None:
    """The `connectbatch` script beside this interpreter when the shell would not find it by
    name: after `make run` (which calls .venv/bin/connectbatch) every hint above said
    `connectbatch ...`, and a new user's shell answered "command not found"."""
    script = Path(sys.executable).parent / PROG
    if shutil.which(PROG) is not None or not script.is_file():
        return None
    return script


# ------------------------------------------------------------------------------------ main

COMMANDS: dict[str, Command] = {
    "parse": Command("parse a CSV file and report accepted rows and rejects", _configure_parse, _run_parse),
    "types": Command("list the data types", _configure_types, _run_types),
    "template": Command("print a data type's template CSV", _configure_template, _run_template),
    "demo": Command("load demo connections and runs, and write a sample file", _configure_demo, _run_demo),
    **cli_connections.COMMANDS,
    **cli_runs.COMMANDS,
    **cli_actions.COMMANDS,
    **cli_quarantine.COMMANDS,
    **cli_engine.COMMANDS,
    **cli_users.COMMANDS,
    **cli_partners.COMMANDS,
    **cli_exports.COMMANDS,
    **cli_delivery.COMMANDS,
    **cli_triage.COMMANDS,
    **cli_syncback.COMMANDS,
    **cli_worker.COMMANDS,
}


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line: `connectbatch: error: connection add: ...`."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix(PROG).strip()
        # "unrecognized arguments: ..." repeats what was typed as it is (a pasted file name
        # with an escape sequence in it drove the terminal): escaped like every error line.
        self.exit(
            EXIT_UNUSABLE,
            f"{PROG}: error: {where + ': ' if where else ''}{escaping.visible(message)} "
            f"(see `{self.prog} --help`)\n",
        )


# What a script needs to know and --help did not say (only this module's docstring did).
EPILOG = """\
`COMMAND --help` describes each command.

exit codes: 0 done (rejected rows are a normal outcome); 1 an ingest, retry or pull whose run
ended Failed or Needs review; 2 an unusable input, option or setting (one `connectbatch: error:`
line); 75 busy: the database is locked or the connection has a run in progress, try again
later; 3 an internal error (CONNECTBATCH_DEBUG=1 shows its traceback).

settings: CONNECTBATCH_* variables (README, Configuration); the data directory is
CONNECTBATCH_HOME (default ./data)."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="ConnectBatch: batch file ingestion for performance-marketing data.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        command.configure(sub.add_parser(name, help=command.help, description=command.help))
    return parser


def _run_now_alias(argv: list[str]) -> list[str]:
    """`connectbatch run N` (the issue's spelling) means `connectbatch pull N`, while
    `connectbatch run show ID` keeps showing a run."""
    if len(argv) >= 2 and argv[0] == "run" and argv[1] not in ("show", "-h", "--help"):
        return ["pull", *argv[1:]]
    return argv


def _unencodable_as_escapes() -> None:
    """A file name that is not UTF-8 (latin-1 bytes from a partner's zip) reaches Python as
    lone surrogates, which a UTF-8 terminal's strict stdout cannot encode: `parse` of such a
    file ended in "internal error: UnicodeEncodeError". Such characters print as `\\udce9`
    escapes instead, as stderr already does."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) == "strict":
            reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    # Problems reach the user as the command's own output; logs (which may carry
    # tracebacks) only with CONNECTBATCH_DEBUG. `serve` sets up its own logging.
    debug = debug_enabled()
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.CRITICAL,
        format=f"{PROG}: %(levelname)s %(name)s: %(message)s",
    )
    escaping.install()  # names are data: one log record is one line, no terminal escapes
    _unencodable_as_escapes()
    try:
        args = build_parser().parse_args(_run_now_alias(list(sys.argv[1:] if argv is None else argv)))
    except SystemExit as exc:  # usage errors, --help, --version: argparse has printed them
        return exc.code if isinstance(exc.code, int) else EXIT_OK if exc.code is None else EXIT_UNUSABLE
    try:
        return COMMANDS[args.command].run(args)
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (ConnectBatchError, OSError) as exc:
        print(f"{PROG}: error: {escaping.visible(str(exc))}", file=sys.stderr)
        return cli_common.exit_code(exc)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: still one line, unless asked for the traceback
        if debug_enabled():
            raise
        print(
            f"{PROG}: error: internal error: {type(exc).__name__}: {escaping.visible(str(exc))} "
            "(set CONNECTBATCH_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
