"""The `connectbatch user` command: the people who log in to the app and their roles.

    connectbatch user add NAME --role admin|analyst|reviewer|partner_manager [--password-stdin]
    connectbatch user list | disable NAME

The CLI acts as the local operator (no login): whoever can run it on this machine owns the
data directory anyway. Without --password-stdin a strong password is generated and printed
once; it cannot be shown again.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from connectbatch.cli import common as cc
from connectbatch.cli.common import EXIT_OK, Command
from connectbatch.errors import ConfigurationError
from connectbatch.models import ROLE_LABELS, Role, User
from connectbatch.secrets import new_password


def _user_dict(user: User) -> dict[str, Any]:
    return {**dataclasses.asdict(user), "role": str(user.role)}


def _user_add(args: argparse.Namespace) -> int:
    password, generated = _read_or_generate(args)
    user = cc.services().add_user(args.name, args.role, password)
    if args.json:
        cc.print_json({**_user_dict(user), **({"password": password} if generated else {})})
        return EXIT_OK
    print(f"added user {user.name} ({ROLE_LABELS[user.role]})")
    if generated:
        print(f"  password {password} (shown once)")
    return EXIT_OK


def _user_list(args: argparse.Namespace) -> int:
    users = cc.services().users()
    if args.json:
        cc.print_json([_user_dict(u) for u in users])
        return EXIT_OK
    if not users:
        print("no users yet: add one with `connectbatch user add NAME --role admin`")
        return EXIT_OK
    rows = [
        [u.name, str(u.role), "disabled" if u.disabled else "active", str(u.failed_logins),
         cc.when(u.created_at)]
        for u in users
    ]  # fmt: skip
    cc.table(["NAME", "ROLE", "STATE", "FAILED LOGINS", "CREATED"], rows, right=[3])
    return EXIT_OK


def _read_or_generate(args: argparse.Namespace) -> tuple[str, bool]:
    """The password from standard input, or a generated one (then printed once)."""
    if not args.password_stdin:
        return new_password(), True
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise ConfigurationError("--password-stdin: standard input held no password")
    return password, False


def _user_password(args: argparse.Namespace) -> int:
    password, generated = _read_or_generate(args)
    user = cc.services().set_user_password(args.name, password)
    if args.json:
        cc.print_json({**_user_dict(user), **({"password": password} if generated else {})})
        return EXIT_OK
    print(f"new password for {user.name}; the login is enabled")
    if generated:
        print(f"  password {password} (shown once)")
    return EXIT_OK


def _user_disable(args: argparse.Namespace) -> int:
    user = cc.services().disable_user(args.name)
    if args.json:
        cc.print_json(_user_dict(user))
        return EXIT_OK
    print(f"disabled user {user.name}: they can no longer log in")
    return EXIT_OK


def _configure_user(p: argparse.ArgumentParser) -> None:
    sub = cc.subcommands(p)
    add = cc.leaf(sub, "add", "add a user who logs in to the app", _user_add)
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", required=True, choices=[str(r) for r in Role], help="what the user may do")
    add.add_argument(
        "--password-stdin", action="store_true",
        help="read the password from standard input (default: generate one and print it once)",
    )  # fmt: skip
    cc.json_flag(add)
    cc.json_flag(cc.leaf(sub, "list", "list the users", _user_list))
    reset = cc.leaf(sub, "password", "set a new password (and enable the user again)", _user_password)
    reset.add_argument("name", metavar="NAME")
    reset.add_argument(
        "--password-stdin", action="store_true",
        help="read the password from standard input (default: generate one and print it once)",
    )  # fmt: skip
    cc.json_flag(reset)
    disable = cc.leaf(sub, "disable", "stop a user from logging in", _user_disable)
    disable.add_argument("name", metavar="NAME")
    cc.json_flag(disable)


COMMANDS: dict[str, Command] = {
    "user": Command("add, list, disable app users or set a new password", _configure_user, cc.dispatch),
}
