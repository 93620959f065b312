"""What every `connectbatch` subcommand shares: the `Command` entry, the exit codes, argument
types, the sub-subcommand plumbing (`subcommands`, `leaf`, `dispatch`), text and JSON output,
and the printing of a run and its files (ingest, runs, retry, quarantine and pull show runs).

The commands only call `connectbatch.services` (never the store), print readable text or, with
`--json`, one JSON document on one line, and leave error reporting to `cli.main`: a
ConnectBatchError becomes one `connectbatch: error: ...` line and `exit_code(exc)`.

Exit codes, distinct so a script can tell what to do next:
0 done; 1 the run ended Failed (see its reason); 2 the input or an option is unusable (fix
it); 75 busy: the database is locked by another process or the connection has a run in
progress (EX_TEMPFAIL: try again later); 3 internal error (a bug; CONNECTBATCH_DEBUG=1).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import getpass
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeAlias

from connectbatch.errors import ConfigurationError, RunInProgressError
from connectbatch.escaping import visible
from connectbatch.models import FileRecord, Run, RunStatus
from connectbatch.services import Services
from connectbatch.settings import Settings
from connectbatch.store.db import DatabaseBusyError

PROG = "connectbatch"
EXIT_OK = 0
EXIT_RUN_FAILED = 1  # ingest/retry/pull: the run ended Failed or Needs review (nothing loaded)
EXIT_UNUSABLE = 2
EXIT_INTERNAL = 3
EXIT_BUSY = 75  # EX_TEMPFAIL (sysexits.h): busy or locked, try again later


def exit_code(exc: BaseException) -> int:
    """The exit code of an expected error: busy (retry later) or unusable input."""
    if isinstance(exc, DatabaseBusyError | RunInProgressError):
        return EXIT_BUSY
    return EXIT_UNUSABLE


@dataclass(frozen=True)
class Command:
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


Handler = Callable[[argparse.Namespace], int]
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


# ------------------------------------------------------------------------------- helpers


def services() -> Services:
    """The façade, after the cheap start check every command makes: runs a dead process left
    In Progress are marked Failed, and a killed copy's temporary files are removed."""
    settings = Settings.from_env()
    settings.check_usable()  # the data directory, the database's folder, the key: named at start
    try:
        svc = Services(settings)
        svc.startup()
    except OSError as exc:
        if not str(exc.filename or "").startswith(str(settings.home)):
            raise
        # A bare "[Errno 2] No such file or directory: '/srv/cb'" named neither the setting
        # nor what was being done.
        raise ConfigurationError(
            f"the data directory {settings.home} (CONNECTBATCH_HOME) cannot be used: "
            f"{exc.strerror or exc}: {exc.filename}"
        ) from None
    return svc


def _default_actor() -> str:
    try:
        return getpass.getuser() or "cli"
    except (OSError, KeyError, ImportError):  # no user name in the environment or passwd
        return "cli"


def actor(args: argparse.Namespace) -> str:
    return str(args.actor) if args.actor else _default_actor()


def when(value: dt.datetime | None) -> str:
    if value is None:
        return "-"
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # exact: "12.50", not 12.5
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def print_json(payload: Any) -> None:
    print(json.dumps(payload, default=_json_default, ensure_ascii=False))


def one_line(text: str | None, width: int | None = None) -> str:
    if not text:
        return "-"
    flat = visible(" ".join(text.split()))
    if width is not None and len(flat) > width:
        return flat[: width - 1] + "…"
    return flat


# An SSH key file, private or public, is a few KB (RSA 16384 under 13 KB): more is no key.
KEY_FILE_BYTES = 64 * 1024


def small_text_file(path: Path, flag: str, limit: int, what: str) -> str:
    """The UTF-8 text of a small file an option names (`what`: a public key), read at most
    `limit` bytes. A directory, a missing or unreadable file was a bare `[Errno 21] ...` line,
    a file that is not UTF-8 an internal error, and /dev/zero was read until memory ran out;
    each is now one line naming the option and the path. A pipe (/dev/stdin) still works."""
    try:
        with open(path, "rb") as file:
            data = file.read(limit + 1)
    except OSError as exc:
        raise ConfigurationError(f"{flag}: cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise ConfigurationError(f"{flag}: {path} is larger than {limit:,} bytes: too big for {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError(f"{flag}: cannot read {path}: not a UTF-8 text file") from None


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: Iterable[int] = (),
    indent: str = "",
) -> None:
    """Columns padded to their widest cell; `right` lists the right-aligned (numeric) ones.
    Cells are partner data (file names, headers): control characters print as escapes."""
    aligned = set(right)
    rows = [[visible(cell) for cell in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for row in [headers, *rows]:
        cells = [
            cell.rjust(width) if i in aligned else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print(indent + "  ".join(cells).rstrip())


def fields(pairs: Sequence[tuple[str, str]], indent: str = "  ") -> None:
    width = max(len(label) for label, _ in pairs)
    for label, value in pairs:
        print(f"{indent}{label:<{width}}  {visible(value)}")


def count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


# The largest whole number the store takes (a BIGINT): a bigger --limit or id was an
# "internal error" with DuckDB's conversion message and an SQL excerpt.
LARGEST = 2**63 - 1


def whole(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if abs(value) > LARGEST:
        raise argparse.ArgumentTypeError(f"must be at most {LARGEST:,}, got {text.strip()}")
    return value


def positive(text: str) -> int:
    value = whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def within(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high`, refused by argparse with the
    option's name (a value past a store column's range was an "internal error" quoting SQL)."""

    def parse(text: str) -> int:
        value = whole(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low:,} to {high:,}, got {value}")
        return value

    return parse


def seconds_within(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a number of seconds from `low` to `high` ("nan" and "inf" are floats
    too: they ended in an internal error where the time was used)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
        if not low <= value <= high:  # false for NaN too
            raise argparse.ArgumentTypeError(f"must be from {low:g} to {high:g} seconds, got {text!r}")
        return value

    return parse


def confirmed(question: str) -> bool:
    """Ask on the terminal; only y/yes is a yes. End of input (Ctrl-D) is a no: it ended in
    "internal error: EOFError"."""
    try:
        answer = input(question)
    except EOFError:
        print()
        return False
    return answer.strip().lower() in ("y", "yes")


def non_negative(text: str) -> int:
    value = whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def run_id(text: str) -> int:
    try:
        return positive(text.strip().lstrip("#"))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a run id (e.g. 12)") from None


def iso_time(text: str) -> dt.datetime:
    """An ISO 8601 time, in UTC (one without offset is UTC). Converted here, where an offset
    that moves it past year 1 or 9999 is a usage error: it was "internal error: OverflowError"."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time such as 2026-03-01T00:00:00Z"
        ) from None
    try:
        return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    except OverflowError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is out of range: in UTC it is before year 1 or after 9999"
        ) from None


def subcommands(p: argparse.ArgumentParser) -> SubParsers:
    return p.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)


def leaf(sub: SubParsers, name: str, help_text: str, handler: Handler) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    p.set_defaults(handler=handler)
    return p


def dispatch(args: argparse.Namespace) -> int:
    handler: Handler = args.handler
    return handler(args)


def json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON document")


def connection_names(svc: Services) -> dict[int, str]:
    return {c.id: c.name for c in svc.connections()}


def connection_name(names: dict[int, str], connection_id: int) -> str:
    return names.get(connection_id, f"#{connection_id} (deleted)")


# ----------------------------------------------------------------------------------- runs


# Run statuses that exit with EXIT_RUN_FAILED: a failed file, or a batch held for review.
NOT_LOADED = (RunStatus.FAILED, RunStatus.NEEDS_REVIEW)


def run_status(run: Run) -> str:
    return run.status.value + (f" ({run.review})" if run.review else "")


def run_dict(run: Run, names: dict[int, str]) -> dict[str, Any]:
    return {**dataclasses.asdict(run), "connection": names.get(run.connection_id)}


def file_dict(f: FileRecord) -> dict[str, Any]:
    return dataclasses.asdict(f)


def print_run(run: Run, names: dict[int, str], retried: Run | None = None) -> None:
    connection = connection_name(names, run.connection_id)
    print(f"run {run.id}  {run_status(run)}  connection {visible(connection)}")
    pairs = [
        ("trigger", run.trigger + (f" (retry of run {run.retry_of})" if run.retry_of else "")),
        ("started", when(run.started_at)),
        ("finished", when(run.finished_at)),
        ("files", f"{run.files_seen} seen, {run.files_loaded} loaded, {run.files_skipped} skipped"),
        (
            "rows",
            f"{run.rows_accepted:,} accepted, {run.rows_rejected:,} rejected, "
            f"{run.rows_duplicate:,} duplicates",
        ),
        # changed: existing actions a modifications file or a corrected record changed
        ("actions", f"{run.actions_created:,} created, {run.actions_changed:,} changed"),
        ("reason", one_line(run.reason)),
    ]
    if run.review:
        note = f": {run.review_note}" if run.review_note else ""
        pairs.append(("review", run.review + note))
    if retried is not None:  # `retried`: the run that retried this one
        pairs.append(("retried", f"as run {retried.id} ({run_status(retried)})"))
    fields(pairs)


def print_files(files: Sequence[FileRecord]) -> None:
    if not files:
        print("files: none")
        return
    print("files:")
    rows = [
        [
            str(f.id),
            f.name,
            f.state,
            f"{f.size:,}",
            f.sha256[:12],
            f"{f.rows_accepted:,}",
            f"{f.rows_rejected:,}",
            one_line(f.message),
        ]
        for f in files
    ]
    table(["FILE", "NAME", "STATE", "BYTES", "SHA256", "ROWS", "REJECTED", "MESSAGE"], rows,
           right=[0, 3, 5, 6], indent="  ")  # fmt: skip


def show_run_result(run: Run, svc: Services, args: argparse.Namespace) -> None:
    """The outcome of ingest, retry, pull, release and discard: the run and its files."""
    names = connection_names(svc)
    files = svc.run_files(run.id)
    if args.json:
        print_json({**run_dict(run, names), "files": [file_dict(f) for f in files]})
        return
    print_run(run, names)
    print_files(files)


def duration_minutes(text: str) -> int:
    """A duration as whole minutes: 90, 90m, 2h, 1d (argparse type)."""
    value = text.strip().lower()
    units = {"m": 1, "h": 60, "d": 24 * 60}
    factor = units.get(value[-1:], 0)
    number = value[:-1] if factor else value
    if not number.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90m, 2h or 1d")
    return int(number) * (factor or 1)


def optional_whole(text: str) -> int | None:
    """A whole number, or '' for none (argparse type of a value that can be cleared)."""
    return None if text.strip() == "" else whole(text)
