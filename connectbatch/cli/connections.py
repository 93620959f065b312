"""The `connectbatch connection` command: add, list, show, edit and delete connections, with
the login to a partner's server (pull) or the login ConnectBatch provisions (push), shown once.

    connectbatch connection add --name N --type T --direction D --method M --methodology Y [...]
    connectbatch connection list | show N | edit N [...] | delete N [--yes]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from connectbatch import services
from connectbatch.cli import common as cc
from connectbatch.cli import connection_output as out
from connectbatch.cli import mapping as cli_mapping
from connectbatch.cli import transfer_flags
from connectbatch.cli.common import EXIT_OK, PROG, Command, Handler
from connectbatch.errors import ConfigurationError
from connectbatch.models import (
    DEFAULT_SCHEDULE,
    METHOD_LABELS,
    METHODOLOGY_LABELS,
    AfterSuccess,
    CatalogMode,
    Connection,
    ConnectionStatus,
    Direction,
    LateEvents,
    Method,
    Methodology,
    Redelivery,
)
from connectbatch.services.credentials import check_new_login

MAX_MIN_AGE = 2**31 - 1  # the store's column: a larger --min-age-seconds was an internal error
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
    ("--port", "port", {"metavar": "P", "type": cc.whole, "help": "partner's port (pull)"}),
    ("--folder", "folder", {"metavar": "F", "help": "absolute folder to pull from"}),
    ("--pattern", "pattern", {"metavar": "GLOB", "help": "file-name wildcard (default *; email: required)"}),
    ("--return-email", "return_email", {"metavar": "E", "help": "where results are e-mailed"}),
    (
        "--schedule",
        "schedule",
        {
            "metavar": "CRON",
            "help": "cron expression in UTC (not --timezone), e.g. '0 6 * * *'; a new pull or "
            "'Pull from us' connection runs hourly ('0 * * * *') unless given ('': Run now only)",
        },
    ),
    (
        "--lock-days",
        "lock_days",
        {
            "metavar": "D",
            "type": cc.whole,
            "help": "days after the event date actions lock (30); a change applies to actions created "
            "from then on",
        },
    ),
    (
        "--min-age-seconds",
        "min_age_seconds",
        {
            "metavar": "S",
            "type": cc.within(0, MAX_MIN_AGE),
            "help": "leave files younger than this for later (0)",
        },
    ),
    ("--timezone", "timezone", {"metavar": "TZ", "help": "zone of dates without offset (UTC)"}),
    ("--encoding", "encoding", {"metavar": "E", "help": "encoding when there is no BOM (UTF-8)"}),
    ("--delimiter", "delimiter", {"metavar": "D", "help": "field delimiter; 'tab' for tabs (,)"}),
    (
        "--after-success",
        "after_success",
        {"choices": [a.value for a in AfterSuccess], "help": "what a pull does with the file"},
    ),
    ("--archive-folder", "archive_folder", {"metavar": "F", "help": "absolute archive folder"}),
    (
        "--redelivery",
        "redelivery",
        {
            "choices": [r.value for r in Redelivery],
            "help": "records re-sent with known keys: new_keys_only holds the file for review "
            "(default); supersede replaces their stored rows and still-pending actions",
        },
    ),
    (
        "--catalog-mode",
        "catalog_mode",
        {
            "choices": [m.value for m in CatalogMode],
            "help": "product catalogs: updates changes only the items listed (default); "
            "snapshot also marks removed the items a file leaves out",
        },
    ),
    (
        "--late-events",
        "late_events",
        {
            "choices": [p.value for p in LateEvents],
            "help": "an event already past the lock period: lock (create the action LOCKED, "
            "with the reason; default) or refuse (reject the row)",
        },
    ),
    (
        "--expect",
        "expect",
        {
            "metavar": "CADENCE",
            "help": "when files are due, in the connection's time zone: 'daily by 06:00', "
            "'weekdays by 09:00', 'weekly on mon' or a cron expression ('' removes it; "
            f"see `{PROG} delivery N` for a learned suggestion)",
        },
    ),
    (
        "--grace",
        "expect_grace_minutes",
        {
            "metavar": "D",
            "type": cc.duration_minutes,
            "help": "a file is late after its due time + this: 90m, 2h, 1d or minutes (default 1h)",
        },
    ),
    (
        "--volume-tolerance",
        "volume_tolerance",
        {
            "metavar": "PCT",
            "type": cc.optional_whole,
            "help": "alert when a file's rows stray more than PCT %% from the usual ('' stops the check)",
        },
    ),
    (
        "--owner-email",
        "owner_email",
        {"metavar": "E", "help": "who is e-mailed delivery alerts (default: the partner's return address)"},
    ),
    (
        "--sync-back",
        "sync_back",
        {
            "metavar": "CHANNELS",
            "help": "inbound: report later status changes back to the partner: files (their "
            "Pull-from-us folder), email (the return address), files,email (or both), or off / '' (default)",
        },
    ),
    (
        "--status-words",
        "status_words",
        {
            "metavar": "JSON",
            "help": 'our status -> the partner\'s word as JSON, e.g. {"reversed": "deleted"} (defaults: '
            "accepted/released/locked/modified valid, rejected/discarded/reversed/removed invalid)",
        },
    ),
)
# Fields an empty value clears (`--schedule ''` removes the schedule).
_CLEARABLE = {"host", "port", "folder", "return_email", "schedule", "encoding", "archive_folder"}
_CLEARABLE |= {"expect", "volume_tolerance", "owner_email"}  # expected delivery


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
            extra["type"] = lambda text: None if text == "" else cc.whole(text)
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
    transfer_flags.add_credential_flags(creds, editing=editing)
    if not editing:
        creds.add_argument(
            "--reuse-credential", metavar="ID", type=cc.positive, default=None,
            help="use an existing credential set of the same partner (same method, push or pull; "
            f"ids in `{PROG} credentials list N`) instead of creating one; its secret is not shown again",
        )  # fmt: skip
    transfer_flags.add_flags(p)
    partner_default: dict[str, Any] = {"default": argparse.SUPPRESS} if editing else {}
    p.add_argument(
        "--partner", metavar="NAME",
        help="the partner the connection belongs to (name or id; required for a new connection, "
        f"see `{PROG} partner add`)" + ("; moves the connection" if editing else ""),
        **partner_default,
    )  # fmt: skip
    cc.json_flag(p)


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
        elif dest == "late_events":
            value = LateEvents(value)
        values[dest] = value
    return values


def _flag_errors(handler: Handler) -> Handler:
    """Name the option, not the model field, in a rejected value: `--return-email: ...`."""
    flags = {dest: flag for flag, dest, _keywords in _CONNECTION_OPTIONS}

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except services.InvalidInputError as exc:
            if exc.field in transfer_flags.FLAG_OF_FIELD:
                raise transfer_flags.flag_error(exc) from None
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
    values["transfer"] = transfer_flags.apply(args, values["method"], None)
    if args.schedule is None and values["methodology"] in (Methodology.PULL, Methodology.PULL_FROM_US):
        values["schedule"] = DEFAULT_SCHEDULE  # `--schedule ''`: Run now only
    if values["method"] is Method.EMAIL and not args.pattern:  # "*" took signature images as files
        raise ConfigurationError(
            "--pattern: is required for the Email method: a wildcard that matches the attachments' "
            "file names, such as Conversions_*.csv"
        )
    credential = transfer_flags.credential_input(args, values["methodology"])
    svc = cc.services()
    if not args.partner and svc.default_partner is None:
        raise ConfigurationError(
            f"--partner: is required: every connection belongs to a partner (see `{PROG} partner list`, "
            f"`{PROG} partner add NAME --type brand`)"
        )
    try:
        created, provisioned = svc.create_connection(
            Connection(**values), credential, partner=args.partner, reuse_credential=args.reuse_credential
        )
    except services.InvalidInputError as exc:
        flag = {"partner": "--partner", "reuse_credential": "--reuse-credential"}.get(exc.field)
        if flag is None:
            raise
        raise ConfigurationError(f"{flag}: {str(exc).removeprefix(exc.field + ': ')}") from None
    if args.reuse_credential is not None:
        return _report_reused(args, created, args.reuse_credential)
    return _report_saved(args, "created", created, credential, provisioned, "credential stored (encrypted)")


def _report_reused(args: argparse.Namespace, connection: Connection, credential_id: int) -> int:
    """`connection add --reuse-credential`: the connection and who shares the set (no secret)."""
    shared = next(c for c in cc.services().credentials(connection.id) if c.id == credential_id)
    if args.json:
        cc.print_json(
            {
                "connection": out.connection_dict(connection),
                "provisioned": None,
                "reused_credential": out.credential_dict(shared),
            }
        )
        return EXIT_OK
    print("created ", end="")
    out.print_connection(connection)
    users = ", ".join(cc.one_line(n) for n in shared.used_by)
    print(f"uses credential {shared.id} ({cc.one_line(shared.name)}), shared by: {users}")
    return EXIT_OK


def _report_saved(
    args: argparse.Namespace,
    verb: str,
    connection: Connection,
    credential: services.CredentialInput | None,
    provisioned: services.Provisioned | None,
    stored: str,
) -> int:
    """What `connection add` and `edit` print: the connection, and a new login shown once."""
    if args.json:
        cc.print_json(
            {"connection": out.connection_dict(connection), "provisioned": out.provisioned_dict(provisioned)}
        )
        return EXIT_OK
    print(f"{verb} ", end="")
    out.print_connection(connection)
    if credential is not None and provisioned is None:
        print(stored)
    if provisioned is not None:
        out.print_provisioned(provisioned)
    return EXIT_OK


def _connection_list(args: argparse.Namespace) -> int:
    svc = cc.services()
    connections = svc.connections()
    partners = svc.partner_names()
    if args.json:
        cc.print_json([out.connection_dict(c) for c in connections])
        return EXIT_OK
    if not connections:
        print(f"no connections yet; add one with `{PROG} connection add`")
        return EXIT_OK
    rows = [
        [
            str(c.id),
            c.name,
            cc.one_line(partners.get(c.partner_id or 0, "-")),
            c.data_type,
            Direction(c.direction).value,
            METHOD_LABELS[Method(c.method)],
            METHODOLOGY_LABELS[Methodology(c.methodology)],
            c.schedule or "-",
            c.status.shown.value + out.review_flag(c),
            cc.when(c.last_active),
        ]
        for c in connections
    ]
    headers = ["ID", "NAME", "PARTNER", "TYPE", "DIRECTION", "METHOD", "METHODOLOGY", "SCHEDULE", "STATUS",
               "LAST ACTIVE"]  # fmt: skip
    cc.table(headers, rows, right=[0])
    held = sum(c.status is ConnectionStatus.NEEDS_REVIEW for c in connections)
    if held:  # a held batch is not a failure: say where it is decided
        print(f"\n{held} connection(s) need review: a batch waits for a reviewer; "
              f"see `{PROG} quarantine list`")  # fmt: skip
    return EXIT_OK


def _connection_show(args: argparse.Namespace) -> int:
    svc = cc.services()
    connection = svc.connection(args.connection)
    creds = svc.credentials(connection.name)
    if args.json:
        cc.print_json(
            {
                "connection": out.connection_dict(connection),
                "credentials": [out.credential_dict(c) for c in creds],
            }
        )
        return EXIT_OK
    out.print_connection(connection)
    out.print_credentials(creds)
    return EXIT_OK


@_flag_errors
def _connection_edit(args: argparse.Namespace) -> int:
    svc = cc.services()
    current = svc.connection(args.connection)
    changes = _connection_values(args)
    if getattr(args, "partner", None):
        changes["partner"] = args.partner
    transfer = transfer_flags.apply(args, current.method, current.transfer)
    if transfer is not None:
        changes["transfer"] = transfer
    credential = transfer_flags.credential_input(args, changes.get("methodology", current.methodology))
    if not changes and credential is None:
        raise ConfigurationError(
            f"nothing to change: give at least one option (see `{PROG} connection edit --help`)"
        )
    methodology = changes.get("methodology", current.methodology)
    if credential is not None and credential.username is None:
        # A new password or key for the same login: keep the main credential's user name.
        main = next((c for c in svc.credentials(current.name) if c.is_main), None)
        if main is not None and main.kind == "remote" and main.username:
            credential = dataclasses.replace(credential, username=main.username)
    if credential is not None:  # a login that cannot work: refused before anything is saved
        check_new_login(Methodology(methodology), credential)
    updated = svc.update_connection(current.name, **changes) if changes else current
    provisioned = None
    if credential is not None:
        _cred, provisioned = svc.add_credential(updated.name, credential)
    stored = "new main credential stored (encrypted); the older ones are now secondary"
    return _report_saved(args, "updated", updated, credential, provisioned, stored)


def _connection_delete(args: argparse.Namespace) -> int:
    svc = cc.services()
    connection = svc.connection(args.connection)
    if not args.yes:
        if not sys.stdin.isatty():
            raise ConfigurationError(
                f"not deleting connection {connection.name!r} without --yes "
                "(standard input is not a terminal to ask)"
            )
        question = f"Delete connection {connection.name!r} and its credentials? "
        if not cc.confirmed(question + "Its runs, data and actions are kept. [y/N] "):
            print("not deleted")
            return EXIT_OK
    svc.delete_connection(connection.name)
    if args.json:
        cc.print_json({"deleted": {"id": connection.id, "name": connection.name}})
    else:
        print(f"deleted connection {connection.id}: {connection.name} (runs and actions are kept)")
    return EXIT_OK


def _configure_connection(p: argparse.ArgumentParser) -> None:
    sub = cc.subcommands(p)
    add = cc.leaf(sub, "add", "create a connection", _connection_add)
    _add_connection_options(add, editing=False)
    cc.json_flag(cc.leaf(sub, "list", "list the connections", _connection_list))
    show = cc.leaf(sub, "show", "show a connection and its credentials", _connection_show)
    show.add_argument("connection", metavar="N", help="connection name or id")
    cc.json_flag(show)
    edit = cc.leaf(sub, "edit", "change a connection (only the options given)", _connection_edit)
    edit.add_argument("connection", metavar="N", help="connection name or id")
    edit.epilog = (
        "An empty value clears an optional setting, e.g. --schedule '' ("
        + ", ".join(flag for flag, dest, _keywords in _CONNECTION_OPTIONS if dest in _CLEARABLE)
        + ")."
    )
    _add_connection_options(edit, editing=True)
    delete = cc.leaf(sub, "delete", "delete a connection and its credentials", _connection_delete)
    delete.add_argument("connection", metavar="N", help="connection name or id")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    cc.json_flag(delete)
    cli_mapping.configure(sub)


COMMANDS: dict[str, Command] = {
    "connection": Command("add, list, show, edit or delete connections", _configure_connection,
                          cc.dispatch),
}  # fmt: skip
