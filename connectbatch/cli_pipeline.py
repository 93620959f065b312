"""The pipeline subcommands of `connectbatch`: connections, ingest, runs, rejects, actions,
lock and quarantine. They only call `connectbatch.services` (never the store), print readable
text or, with `--json`, one JSON document on one line, and leave error reporting to
`cli.main`: a ConnectBatchError becomes one `connectbatch: error: ...` line and exit code 2.

    connectbatch connection add --name N --type T --direction D --method M --methodology Y [...]
    connectbatch connection list | show N | edit N [...] | delete N [--yes]
    connectbatch ingest FILE --connection N
    connectbatch runs [--connection N] [--limit K]
    connectbatch run show RUN_ID
    connectbatch rejects RUN_ID [--limit K]
    connectbatch retry RUN_ID
    connectbatch actions [--connection N] [--status S] [--limit K] [--offset K]
    connectbatch action modify ID --amount A [--reason R] [--actor WHO]
    connectbatch action reverse ID --reason R [--actor WHO]
    connectbatch action audit ID
    connectbatch lock [--now ISO_TIME]
    connectbatch quarantine list | release RUN_ID [--note T] | discard RUN_ID [--note T]

`ingest` and `retry` exit with 1 when the run they started ended Failed (a rejected or
quarantined file): the command worked, the file did not.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import getpass
import json
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeAlias

from connectbatch import services
from connectbatch.errors import ConfigurationError
from connectbatch.models import (
    METHOD_LABELS,
    METHODOLOGY_LABELS,
    Action,
    ActionStatus,
    AuditEntry,
    Connection,
    Credential,
    Direction,
    FileRecord,
    Method,
    Methodology,
    RejectRow,
    Run,
    RunStatus,
)

PROG = "connectbatch"
EXIT_OK = 0
EXIT_RUN_FAILED = 1  # ingest/retry: the run ended Failed
EXIT_UNUSABLE = 2


@dataclass(frozen=True)
class Command:
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


Handler = Callable[[argparse.Namespace], int]
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


# ------------------------------------------------------------------------------- helpers


def _services() -> services.Services:
    return services.Services()


def _default_actor() -> str:
    try:
        return getpass.getuser() or "cli"
    except (OSError, KeyError, ImportError):  # no user name in the environment or passwd
        return "cli"


def _actor(args: argparse.Namespace) -> str:
    return str(args.actor) if args.actor else _default_actor()


def _when(value: dt.datetime | None) -> str:
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


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, default=_json_default, ensure_ascii=False))


def _one_line(text: str | None, width: int | None = None) -> str:
    if not text:
        return "-"
    flat = " ".join(text.split())
    if width is not None and len(flat) > width:
        return flat[: width - 1] + "…"
    return flat


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: Iterable[int] = (),
    indent: str = "",
) -> None:
    """Columns padded to their widest cell; `right` lists the right-aligned (numeric) ones."""
    aligned = set(right)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for row in [headers, *rows]:
        cells = [
            cell.rjust(width) if i in aligned else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print(indent + "  ".join(cells).rstrip())


def _fields(pairs: Sequence[tuple[str, str]], indent: str = "  ") -> None:
    width = max(len(label) for label, _ in pairs)
    for label, value in pairs:
        print(f"{indent}{label:<{width}}  {value}")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _non_negative(text: str) -> int:
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _run_id(text: str) -> int:
    try:
        return _positive(text.strip().lstrip("#"))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a run id (e.g. 12)") from None


def _iso_time(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time such as 2026-03-01T00:00:00Z"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _subcommands(p: argparse.ArgumentParser) -> SubParsers:
    return p.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)


def _leaf(sub: SubParsers, name: str, help_text: str, handler: Handler) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    p.set_defaults(handler=handler)
    return p


def _dispatch(args: argparse.Namespace) -> int:
    handler: Handler = args.handler
    return handler(args)


def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON document")


def _names(svc: services.Services) -> dict[int, str]:
    return {c.id: c.name for c in svc.connections()}


def _connection_name(names: dict[int, str], connection_id: int) -> str:
    return names.get(connection_id, f"#{connection_id} (deleted)")


# --------------------------------------------------------------------------- connections

# (flag, Connection field, argparse keywords); `add` requires the first five.
_REQUIRED_FIELDS = ("name", "data_type", "direction", "method", "methodology")
_CONNECTION_OPTIONS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--name", "name", {"metavar": "N", "help": "unique name of the connection"}),
    ("--type", "data_type", {"metavar": "T", "help": f"data type (see `{PROG} types`)"}),
    ("--direction", "direction", {"choices": [d.value for d in Direction]}),
    ("--method", "method", {"choices": [m.value for m in Method]}),
    (
        "--methodology",
        "methodology",
        {
            "choices": [m.value for m in Methodology],
            "help": "push: the partner sends to us (we provision a login); pull: we collect "
            "from the partner's server; pull_from_us: outbound, the partner collects from us",
        },
    ),
    ("--host", "host", {"metavar": "H", "help": "partner's server (pull)"}),
    ("--port", "port", {"metavar": "P", "type": _whole, "help": "partner's port (pull)"}),
    ("--folder", "folder", {"metavar": "F", "help": "absolute folder to pull from"}),
    ("--pattern", "pattern", {"metavar": "GLOB", "help": "file-name wildcard (default *)"}),
    ("--return-email", "return_email", {"metavar": "E", "help": "where results are e-mailed"}),
    ("--schedule", "schedule", {"metavar": "CRON", "help": "cron expression, e.g. '0 6 * * *'"}),
    (
        "--lock-days",
        "lock_days",
        {"metavar": "D", "type": _whole, "help": "days after the event date actions lock (30)"},
    ),
    (
        "--min-age-seconds",
        "min_age_seconds",
        {"metavar": "S", "type": _whole, "help": "leave files younger than this for later (0)"},
    ),
    ("--timezone", "timezone", {"metavar": "TZ", "help": "zone of dates without offset (UTC)"}),
    ("--encoding", "encoding", {"metavar": "E", "help": "encoding when there is no BOM (UTF-8)"}),
    ("--delimiter", "delimiter", {"metavar": "D", "help": "field delimiter; 'tab' for tabs (,)"}),
    (
        "--after-success",
        "after_success",
        {"choices": ["leave", "archive", "delete"], "help": "what a pull does with the file"},
    ),
    ("--archive-folder", "archive_folder", {"metavar": "F", "help": "absolute archive folder"}),
)
# Fields an empty value clears (`--schedule ''` removes the schedule).
_CLEARABLE = {"host", "port", "folder", "return_email", "schedule", "encoding", "archive_folder"}


def _add_connection_options(p: argparse.ArgumentParser, *, editing: bool) -> None:
    for flag, dest, keywords in _CONNECTION_OPTIONS:
        extra: dict[str, Any] = dict(keywords)
        if editing:
            extra["default"] = argparse.SUPPRESS  # only what was given is in the namespace
        elif dest in _REQUIRED_FIELDS and dest != "data_type":
            extra["required"] = True
        elif dest == "data_type":
            extra["default"] = "call_conversions"
            extra["help"] = f"data type (see `{PROG} types`; default: call_conversions)"
        if dest == "port" and editing:
            extra["type"] = lambda text: None if text == "" else _whole(text)
        p.add_argument(flag, dest=dest, **extra)
    creds = p.add_argument_group(
        "credentials",
        "a pull connection stores the login to the partner's server (encrypted); a push "
        "connection gets a login provisioned by ConnectBatch, shown once"
        + ("; on edit, any of these adds a new main credential" if editing else ""),
    )
    suppress: dict[str, Any] = {"default": argparse.SUPPRESS} if editing else {}
    creds.add_argument("--username", metavar="U", **suppress)
    creds.add_argument("--password", metavar="W", help="visible in the process list: "
                       "prefer --password-stdin", **suppress)  # fmt: skip
    creds.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    creds.add_argument("--key-file", metavar="PATH", type=Path, help="SSH private key", **suppress)
    creds.add_argument("--credential-name", metavar="NAME", help="name of the credential",
                       **suppress)  # fmt: skip
    _json_flag(p)


def _connection_values(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for _flag, dest, _keywords in _CONNECTION_OPTIONS:
        if not hasattr(args, dest) or (getattr(args, dest) is None and dest not in _CLEARABLE):
            continue
        value = getattr(args, dest)
        if dest in _CLEARABLE and value in ("", None):
            value = None
        elif dest == "delimiter" and value in ("tab", "\\t"):
            value = "\t"
        values[dest] = value
    return values


def _read_password(args: argparse.Namespace) -> str | None:
    given: str | None = getattr(args, "password", None)
    if args.password_stdin:
        if given is not None:
            raise ConfigurationError("give either --password or --password-stdin, not both")
        given = sys.stdin.read().rstrip("\r\n")
        if not given:
            raise ConfigurationError("--password-stdin: standard input held no password")
    return given


def _credential_input(
    args: argparse.Namespace, methodology: Methodology | str
) -> services.CredentialInput | None:
    password = _read_password(args)
    username: str | None = getattr(args, "username", None)
    name: str | None = getattr(args, "credential_name", None)
    key_file: Path | None = getattr(args, "key_file", None)
    key: str | None = None
    if key_file is not None:
        try:
            key = key_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not a text key file"
            raise ConfigurationError(f"--key-file: cannot read {key_file}: {reason}") from None
    if username is None and password is None and key is None and name is None:
        return None
    pushed = Methodology(methodology) in (Methodology.PUSH, Methodology.PULL_FROM_US)
    if pushed and (username is not None or password is not None or key is not None):
        raise ConfigurationError(
            "--username, --password and --key-file are for pull connections; "
            "ConnectBatch provisions the login of a push or pull_from_us connection"
        )
    return services.CredentialInput(name=name or "", username=username, password=password, private_key=key)


def _connection_dict(c: Connection) -> dict[str, Any]:
    return dataclasses.asdict(c)


def _credential_dict(c: Credential) -> dict[str, Any]:
    return dataclasses.asdict(c)  # holds no secret, only whether one is stored


def _provisioned_dict(p: services.Provisioned | None) -> dict[str, Any] | None:
    return None if p is None else dataclasses.asdict(p)


def _print_connection(c: Connection) -> None:
    print(f"connection {c.id}: {c.name}")
    delimiter = {"\t": "tab", ",": ","}.get(c.delimiter, repr(c.delimiter))
    archive = c.archive_folder
    mapping = ", ".join(f"{k} -> {v}" for k, v in c.column_map.items()) or "-"
    _fields(
        [
            ("data type", c.data_type),
            ("direction", Direction(c.direction).value),
            ("method", METHOD_LABELS[Method(c.method)]),
            ("methodology", METHODOLOGY_LABELS[Methodology(c.methodology)]),
            ("host", f"{c.host or '-'}" + (f":{c.port}" if c.port else "")),
            ("folder", c.folder or "-"),
            ("pattern", c.pattern),
            ("return e-mail", c.return_email or "-"),
            ("schedule", c.schedule or "-"),
            ("lock period", f"{c.lock_days} days"),
            ("min file age", f"{c.min_age_seconds} s"),
            ("time zone", c.timezone),
            ("encoding", c.encoding or "UTF-8 (default)"),
            ("delimiter", delimiter),
            ("after success", c.after_success + (f" to {c.archive_folder}" if archive else "")),
            ("column map", mapping),
            ("status", f"{c.status.value} (last active {_when(c.last_active)})"),
            ("created", _when(c.created_at)),
            ("updated", _when(c.updated_at)),
        ]
    )


def _print_credentials(creds: Sequence[Credential]) -> None:
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
            c.status + (f": {_one_line(c.last_error, 40)}" if c.last_error else ""),
            c.return_email or "-",
            _when(c.created_at),
        ]
        for c in creds
    ]
    headers = ["ROLE", "NAME", "KIND", "USERNAME", "SECRET", "STATUS", "RETURN E-MAIL", "CREATED"]
    _table(headers, rows, indent="  ")


def _print_provisioned(p: services.Provisioned) -> None:
    print()
    print("Login for the partner. Copy it now: it will not be shown again.")
    pairs = [("host", p.host)]
    if p.port is not None:
        pairs.append(("port", str(p.port)))
    pairs += [("username", p.username), ("password", p.password)]
    if p.email_address:
        pairs.append(("e-mail address", p.email_address))
    _fields(pairs)


def _flag_errors(handler: Handler) -> Handler:
    """Name the option, not the model field, in a rejected value: `--return-email: ...`."""
    flags = {dest: flag for flag, dest, _keywords in _CONNECTION_OPTIONS}

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except services.InvalidInputError as exc:
            if exc.field not in flags:
                raise
            message = str(exc).removeprefix(f"{exc.field}: ")
            raise ConfigurationError(f"{flags[exc.field]}: {message}") from None

    return run


@_flag_errors
def _connection_add(args: argparse.Namespace) -> int:
    values = _connection_values(args)
    for key, kind in (("direction", Direction), ("method", Method), ("methodology", Methodology)):
        values[key] = kind(values[key])
    credential = _credential_input(args, values["methodology"])
    created, provisioned = _services().create_connection(Connection(**values), credential)
    if args.json:
        _print_json({"connection": _connection_dict(created), "provisioned": _provisioned_dict(provisioned)})
        return EXIT_OK
    print("created ", end="")
    _print_connection(created)
    if credential is not None and provisioned is None:
        print("credential stored (encrypted)")
    if provisioned is not None:
        _print_provisioned(provisioned)
    return EXIT_OK


def _connection_list(args: argparse.Namespace) -> int:
    connections = _services().connections()
    if args.json:
        _print_json([_connection_dict(c) for c in connections])
        return EXIT_OK
    if not connections:
        print(f"no connections yet; add one with `{PROG} connection add`")
        return EXIT_OK
    rows = [
        [
            str(c.id),
            c.name,
            c.data_type,
            Direction(c.direction).value,
            METHOD_LABELS[Method(c.method)],
            METHODOLOGY_LABELS[Methodology(c.methodology)],
            c.schedule or "-",
            c.status.value,
            _when(c.last_active),
        ]
        for c in connections
    ]
    headers = ["ID", "NAME", "TYPE", "DIRECTION", "METHOD", "METHODOLOGY", "SCHEDULE", "STATUS",
               "LAST ACTIVE"]  # fmt: skip
    _table(headers, rows, right=[0])
    return EXIT_OK


def _connection_show(args: argparse.Namespace) -> int:
    svc = _services()
    connection = svc.connection(args.connection)
    creds = svc.credentials(connection.name)
    if args.json:
        _print_json(
            {
                "connection": _connection_dict(connection),
                "credentials": [_credential_dict(c) for c in creds],
            }
        )
        return EXIT_OK
    _print_connection(connection)
    _print_credentials(creds)
    return EXIT_OK


@_flag_errors
def _connection_edit(args: argparse.Namespace) -> int:
    svc = _services()
    current = svc.connection(args.connection)
    changes = _connection_values(args)
    credential = _credential_input(args, changes.get("methodology", current.methodology))
    if not changes and credential is None:
        raise ConfigurationError(
            f"nothing to change: give at least one option (see `{PROG} connection edit --help`)"
        )
    updated = svc.update_connection(current.name, **changes) if changes else current
    provisioned = None
    if credential is not None and credential.username is None:
        # A new password or key for the same login: keep the main credential's user name.
        main = next((c for c in svc.credentials(updated.name) if c.is_main), None)
        if main is not None and main.kind == "remote" and main.username:
            credential = dataclasses.replace(credential, username=main.username)
    if credential is not None:
        _cred, provisioned = svc.add_credential(updated.name, credential)
    if args.json:
        _print_json({"connection": _connection_dict(updated), "provisioned": _provisioned_dict(provisioned)})
        return EXIT_OK
    print("updated ", end="")
    _print_connection(updated)
    if credential is not None and provisioned is None:
        print("new main credential stored (encrypted); the older ones are now secondary")
    if provisioned is not None:
        _print_provisioned(provisioned)
    return EXIT_OK


def _connection_delete(args: argparse.Namespace) -> int:
    svc = _services()
    connection = svc.connection(args.connection)
    if not args.yes:
        if not sys.stdin.isatty():
            raise ConfigurationError(
                f"not deleting connection {connection.name!r} without --yes "
                "(standard input is not a terminal to ask)"
            )
        answer = input(
            f"Delete connection {connection.name!r} and its credentials? "
            "Its runs, data and actions are kept. [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            print("not deleted")
            return EXIT_OK
    svc.delete_connection(connection.name)
    if args.json:
        _print_json({"deleted": {"id": connection.id, "name": connection.name}})
    else:
        print(f"deleted connection {connection.id}: {connection.name} (runs and actions are kept)")
    return EXIT_OK


def _configure_connection(p: argparse.ArgumentParser) -> None:
    sub = _subcommands(p)
    add = _leaf(sub, "add", "create a connection", _connection_add)
    _add_connection_options(add, editing=False)
    _json_flag(_leaf(sub, "list", "list the connections", _connection_list))
    show = _leaf(sub, "show", "show a connection and its credentials", _connection_show)
    show.add_argument("connection", metavar="N", help="connection name or id")
    _json_flag(show)
    edit = _leaf(sub, "edit", "change a connection (only the options given)", _connection_edit)
    edit.add_argument("connection", metavar="N", help="connection name or id")
    edit.epilog = (
        "An empty value clears an optional setting, e.g. --schedule '' ("
        + ", ".join(flag for flag, dest, _keywords in _CONNECTION_OPTIONS if dest in _CLEARABLE)
        + ")."
    )
    _add_connection_options(edit, editing=True)
    delete = _leaf(sub, "delete", "delete a connection and its credentials", _connection_delete)
    delete.add_argument("connection", metavar="N", help="connection name or id")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _json_flag(delete)


# ----------------------------------------------------------------------------------- runs


def _run_status(run: Run) -> str:
    return run.status.value + (f" ({run.review})" if run.review else "")


def _run_dict(run: Run, names: dict[int, str]) -> dict[str, Any]:
    return {**dataclasses.asdict(run), "connection": names.get(run.connection_id)}


def _file_dict(f: FileRecord) -> dict[str, Any]:
    return dataclasses.asdict(f)


def _print_run(run: Run, names: dict[int, str]) -> None:
    connection = _connection_name(names, run.connection_id)
    print(f"run {run.id}  {_run_status(run)}  connection {connection}")
    pairs = [
        ("trigger", run.trigger + (f" (retry of run {run.retry_of})" if run.retry_of else "")),
        ("started", _when(run.started_at)),
        ("finished", _when(run.finished_at)),
        ("files", f"{run.files_seen} seen, {run.files_loaded} loaded, {run.files_skipped} skipped"),
        (
            "rows",
            f"{run.rows_accepted:,} accepted, {run.rows_rejected:,} rejected, "
            f"{run.rows_duplicate:,} duplicates",
        ),
        ("actions", f"{run.actions_created:,} created"),
        ("reason", _one_line(run.reason)),
    ]
    if run.review:
        note = f": {run.review_note}" if run.review_note else ""
        pairs.append(("review", run.review + note))
    _fields(pairs)


def _print_files(files: Sequence[FileRecord]) -> None:
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
            _one_line(f.message),
        ]
        for f in files
    ]
    _table(["FILE", "NAME", "STATE", "BYTES", "SHA256", "ROWS", "REJECTED", "MESSAGE"], rows,
           right=[0, 3, 5, 6], indent="  ")  # fmt: skip


def _show_run_result(run: Run, svc: services.Services, args: argparse.Namespace) -> None:
    """The outcome of ingest, retry, release and discard: the run and its files."""
    names = _names(svc)
    files = svc.run_files(run.id)
    if args.json:
        _print_json({**_run_dict(run, names), "files": [_file_dict(f) for f in files]})
        return
    _print_run(run, names)
    _print_files(files)


def _configure_ingest(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="CSV file to ingest (.csv, .csv.gz, single-member .zip)")
    p.add_argument("--connection", required=True, metavar="N", help="connection name or id")
    _json_flag(p)


def _run_ingest(args: argparse.Namespace) -> int:
    svc = _services()
    run = svc.ingest_file(args.connection, args.file, trigger="cli")
    _show_run_result(run, svc, args)
    return EXIT_RUN_FAILED if run.status is RunStatus.FAILED else EXIT_OK


def _configure_runs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--connection", metavar="N", help="only this connection's runs")
    p.add_argument("--limit", type=_positive, default=50, metavar="K",
                   help="newest K runs (default: 50)")  # fmt: skip
    _json_flag(p)


def _run_runs(args: argparse.Namespace) -> int:
    svc = _services()
    runs = svc.runs(args.connection, args.limit)
    names = _names(svc)
    if args.json:
        _print_json([_run_dict(r, names) for r in runs])
        return EXIT_OK
    if not runs:
        print("no runs yet")
        return EXIT_OK
    rows = [
        [
            str(r.id),
            _connection_name(names, r.connection_id),
            r.trigger,
            _run_status(r),
            _when(r.started_at),
            f"{r.rows_accepted:,}",
            f"{r.rows_rejected:,}",
            f"{r.rows_duplicate:,}",
            f"{r.actions_created:,}",
            _one_line(r.reason, 60),
        ]
        for r in runs
    ]
    headers = ["RUN", "CONNECTION", "TRIGGER", "STATUS", "STARTED", "ACCEPTED", "REJECTED",
               "DUPLICATES", "ACTIONS", "REASON"]  # fmt: skip
    _table(headers, rows, right=[0, 5, 6, 7, 8])
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
            f"validation of file {check['file_id']} ({file_names.get(check['file_id'], '?')}): "
            f"{verdict}; {_count(len(check['critical_failures']), 'critical failure')}, "
            f"{_count(len(check['warnings']), 'warning')}, {_count(len(outcomes), 'expectation')}"
        )
        for o in outcomes:
            if not o["success"]:
                print(f"  FAIL  {o['severity']:<8}  {o['name']}: {_one_line(o['summary'])}")
        passed = sum(o["success"] for o in outcomes)
        if passed:
            print(f"  ok    {_count(passed, 'expectation')} met")


def _configure_run(p: argparse.ArgumentParser) -> None:
    sub = _subcommands(p)
    show = _leaf(sub, "show", "show a run, its files and its validation", _run_show)
    show.add_argument("run_id", type=_run_id, metavar="RUN_ID")
    _json_flag(show)


def _run_show(args: argparse.Namespace) -> int:
    svc = _services()
    run = svc.run(args.run_id)
    files = svc.run_files(run.id)
    checks = _validation_dicts(svc, run.id)
    names = _names(svc)
    if args.json:
        _print_json({**_run_dict(run, names), "files": [_file_dict(f) for f in files], "validation": checks})
        return EXIT_OK
    _print_run(run, names)
    _print_files(files)
    _print_validation(checks, files)
    return EXIT_OK


def _configure_rejects(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", type=_run_id, metavar="RUN_ID")
    p.add_argument("--limit", type=_positive, default=100, metavar="K",
                   help="show the first K rejects (default: 100)")  # fmt: skip
    _json_flag(p)


def _reject_dict(r: RejectRow) -> dict[str, Any]:
    return dataclasses.asdict(r)


def _run_rejects(args: argparse.Namespace) -> int:
    svc = _services()
    rejects = svc.rejects(args.run_id, args.limit)
    if args.json:
        _print_json([_reject_dict(r) for r in rejects])
        return EXIT_OK
    if not rejects:
        print(f"run {args.run_id} has no rejected rows")
        return EXIT_OK
    rows = [
        [
            str(r.file_id),
            str(r.line),
            r.column or "-",
            "-" if r.value is None else repr(r.value),  # repr: blanks and newlines show
            r.reason,
        ]
        for r in rejects
    ]
    _table(["FILE", "LINE", "COLUMN", "VALUE", "REASON"], rows, right=[0, 1])
    if len(rejects) == args.limit:
        print(f"(first {args.limit}; use --limit to see more)")
    return EXIT_OK


def _configure_retry(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", type=_run_id, metavar="RUN_ID", help="a Failed run")
    _json_flag(p)


def _run_retry(args: argparse.Namespace) -> int:
    svc = _services()
    svc.startup()  # a run a dead process left In Progress becomes Failed, so retriable
    run = svc.retry(args.run_id)
    _show_run_result(run, svc, args)
    return EXIT_RUN_FAILED if run.status is RunStatus.FAILED else EXIT_OK


# -------------------------------------------------------------------------------- actions


def _days_to_lock(action: Action, now: dt.datetime) -> int:
    if action.status is ActionStatus.LOCKED or action.lock_at <= now:
        return 0
    return math.ceil((action.lock_at - now).total_seconds() / 86400)


def _action_dict(a: Action, names: dict[int, str], now: dt.datetime) -> dict[str, Any]:
    return {
        "label": a.label,
        **dataclasses.asdict(a),
        "connection": names.get(a.connection_id),
        "days_to_lock": _days_to_lock(a, now),
    }


def _locks(a: Action, now: dt.datetime) -> str:
    days = _days_to_lock(a, now)
    if days == 0:
        return "locked" if a.status is ActionStatus.LOCKED else "due"  # due: lock job not run
    return f"{days} day" + ("" if days == 1 else "s")


def _print_action(a: Action, names: dict[int, str], now: dt.datetime) -> None:
    print(f"action {a.label}  {a.status.value}  amount {a.amount} (original {a.original_amount})")
    _fields(
        [
            ("connection", _connection_name(names, a.connection_id)),
            ("source", f"run {a.run_id}, line {a.line}, {a.data_type} {a.source_key}"),
            ("event date", _when(a.event_date)),
            ("locks", f"{_when(a.lock_at)} ({_locks(a, now)})"),
            ("campaign", f"{a.campaign_id or '-'}, media {a.media_id or '-'}"),
            ("reason", _one_line(a.reason)),
        ]
    )


def _configure_actions(p: argparse.ArgumentParser) -> None:
    p.add_argument("--connection", metavar="N", help="only this connection's actions")
    p.add_argument("--status", metavar="S", type=str.upper,
                   choices=[s.value for s in ActionStatus], help="PENDING, MODIFIED, REVERSED "
                   "or LOCKED")  # fmt: skip
    p.add_argument("--limit", type=_positive, default=100, metavar="K",
                   help="at most K actions (default: 100)")  # fmt: skip
    p.add_argument("--offset", type=_non_negative, default=0, metavar="K",
                   help="skip the first K (default: 0)")  # fmt: skip
    _json_flag(p)


def _run_actions(args: argparse.Namespace) -> int:
    svc = _services()
    actions = svc.actions(args.connection, args.status, args.limit, args.offset)
    total = svc.count_actions(args.connection, args.status)
    names = _names(svc)
    now = svc.clock()
    if args.json:
        _print_json(
            {
                "total": total,
                "limit": args.limit,
                "offset": args.offset,
                "actions": [_action_dict(a, names, now) for a in actions],
            }
        )
        return EXIT_OK
    if not actions:
        print("no actions" + (f" (there are {total:,}; lower --offset)" if total else ""))
        return EXIT_OK
    rows = [
        [
            a.label,
            _connection_name(names, a.connection_id),
            str(a.run_id),
            str(a.line),
            a.source_key,
            _when(a.event_date),
            str(a.amount),
            str(a.original_amount),
            a.status.value,
            _locks(a, now),
        ]
        for a in actions
    ]
    headers = ["ACTION", "CONNECTION", "RUN", "LINE", "KEY", "EVENT DATE", "AMOUNT", "ORIGINAL",
               "STATUS", "LOCKS IN"]  # fmt: skip
    _table(headers, rows, right=[2, 3, 6, 7])
    first = args.offset + 1
    print(f"{first:,}-{args.offset + len(actions):,} of {total:,} actions")
    return EXIT_OK


def _action_changed(action: Action, args: argparse.Namespace, svc: services.Services) -> int:
    now = svc.clock()
    names = _names(svc)
    if args.json:
        _print_json(_action_dict(action, names, now))
    else:
        _print_action(action, names, now)
    return EXIT_OK


def _action_modify(args: argparse.Namespace) -> int:
    svc = _services()
    action = svc.modify_action(args.id, args.amount, args.reason, _actor(args))
    return _action_changed(action, args, svc)


def _action_reverse(args: argparse.Namespace) -> int:
    svc = _services()
    action = svc.reverse_action(args.id, args.reason, _actor(args))
    return _action_changed(action, args, svc)


def _audit_dict(e: AuditEntry) -> dict[str, Any]:
    return dataclasses.asdict(e)


def _action_audit(args: argparse.Namespace) -> int:
    svc = _services()
    action = svc.action(args.id)
    entries = svc.audit(action.id)
    now = svc.clock()
    names = _names(svc)
    if args.json:
        _print_json({**_action_dict(action, names, now), "audit": [_audit_dict(e) for e in entries]})
        return EXIT_OK
    _print_action(action, names, now)
    if not entries:
        print("audit: no changes yet")
        return EXIT_OK
    print("audit:")
    rows = [
        [
            _when(e.changed_at),
            e.actor,
            e.change,
            f"{e.old_status or '-'} -> {e.new_status}",
            f"{'-' if e.old_amount is None else e.old_amount} -> "
            f"{'-' if e.new_amount is None else e.new_amount}",
            _one_line(e.reason),
        ]
        for e in entries
    ]
    _table(["WHEN", "ACTOR", "CHANGE", "STATUS", "AMOUNT", "REASON"], rows, indent="  ")
    return EXIT_OK


def _configure_action(p: argparse.ArgumentParser) -> None:
    sub = _subcommands(p)
    actor_help = "who makes the change (default: your user name)"
    modify = _leaf(sub, "modify", "set a pending action's amount", _action_modify)
    modify.add_argument("id", metavar="ID", help="action id: 123 or A-000123")
    modify.add_argument("--amount", required=True, metavar="A", help="new amount, e.g. 12.50")
    modify.add_argument("--reason", metavar="R", help="why (kept in the audit)")
    modify.add_argument("--actor", metavar="WHO", help=actor_help)
    _json_flag(modify)
    reverse = _leaf(sub, "reverse", "reverse an action (amount 0)", _action_reverse)
    reverse.add_argument("id", metavar="ID", help="action id: 123 or A-000123")
    reverse.add_argument("--reason", required=True, metavar="R", help="why (kept in the audit)")
    reverse.add_argument("--actor", metavar="WHO", help=actor_help)
    _json_flag(reverse)
    audit = _leaf(sub, "audit", "show an action and every change to it", _action_audit)
    audit.add_argument("id", metavar="ID", help="action id: 123 or A-000123")
    _json_flag(audit)


def _configure_lock(p: argparse.ArgumentParser) -> None:
    p.add_argument("--now", type=_iso_time, metavar="ISO_TIME",
                   help="lock what is due at this time, e.g. 2026-04-01T00:00:00Z; a time without "
                   "offset is UTC (default: now)")  # fmt: skip
    _json_flag(p)


def _run_lock(args: argparse.Namespace) -> int:
    svc = _services()
    now: dt.datetime = args.now or svc.clock()
    locked = svc.lock_actions(now)
    if args.json:
        _print_json({"locked": locked, "now": now})
    else:
        print(f"locked {_count(locked, 'action')} due by {_when(now)}")
    return EXIT_OK


# ----------------------------------------------------------------------------- quarantine


def _quarantine_list(args: argparse.Namespace) -> int:
    svc = _services()
    runs = svc.quarantined()
    names = _names(svc)
    files = {r.id: svc.run_files(r.id) for r in runs}
    if args.json:
        _print_json([{**_run_dict(r, names), "files": [_file_dict(f) for f in files[r.id]]} for r in runs])
        return EXIT_OK
    if not runs:
        print("nothing is quarantined")
        return EXIT_OK
    rows = [
        [
            str(r.id),
            _connection_name(names, r.connection_id),
            _when(r.started_at),
            ", ".join(f.name for f in files[r.id] if f.state == "quarantined") or "-",
            f"{sum(f.rows_accepted for f in files[r.id] if f.state == 'quarantined'):,}",
            _one_line(r.reason, 80),
        ]
        for r in runs
    ]
    _table(["RUN", "CONNECTION", "STARTED", "FILES", "ROWS WAITING", "REASON"], rows,
           right=[0, 4])  # fmt: skip
    print(f"release or discard with `{PROG} quarantine release|discard RUN_ID`")
    return EXIT_OK


def _quarantine_release(args: argparse.Namespace) -> int:
    svc = _services()
    run = svc.release(args.run_id, args.note, _actor(args))
    _show_run_result(run, svc, args)
    return EXIT_OK


def _quarantine_discard(args: argparse.Namespace) -> int:
    svc = _services()
    run = svc.discard(args.run_id, args.note, _actor(args))
    _show_run_result(run, svc, args)
    return EXIT_OK


def _configure_quarantine(p: argparse.ArgumentParser) -> None:
    sub = _subcommands(p)
    _json_flag(_leaf(sub, "list", "list the runs waiting for review", _quarantine_list))
    for name, help_text, handler in (
        ("release", "load a quarantined batch as it is", _quarantine_release),
        ("discard", "drop a quarantined batch", _quarantine_discard),
    ):
        leaf = _leaf(sub, name, help_text, handler)
        leaf.add_argument("run_id", type=_run_id, metavar="RUN_ID")
        leaf.add_argument("--note", metavar="T", help="why (kept with the run)")
        leaf.add_argument("--actor", metavar="WHO", help="reviewer (default: your user name)")
        _json_flag(leaf)


COMMANDS: dict[str, Command] = {
    "connection": Command("add, list, show, edit or delete connections", _configure_connection,
                          _dispatch),
    "ingest": Command("run one file through a connection's pipeline", _configure_ingest,
                      _run_ingest),
    "runs": Command("list the run history", _configure_runs, _run_runs),
    "run": Command("show one run (run show ID), or pull now (run N)", _configure_run, _dispatch),
    "rejects": Command("list a run's rejected rows", _configure_rejects, _run_rejects),
    "retry": Command("run a failed run's files again", _configure_retry, _run_retry),
    "actions": Command("list pending and past actions", _configure_actions, _run_actions),
    "action": Command("modify, reverse or audit one action", _configure_action, _dispatch),
    "lock": Command("lock the actions whose lock period has passed", _configure_lock, _run_lock),
    "quarantine": Command("list, release or discard quarantined batches", _configure_quarantine,
                          _dispatch),
}  # fmt: skip
