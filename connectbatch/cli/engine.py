"""The engine subcommands of `connectbatch`: run a pull now, serve, and credentials.

connectbatch pull N                   # pull now for connection N and print the run (also: run N)
connectbatch serve                    # scheduler + hosted SFTP/FTP + mailbox polling, no UI
connectbatch credentials list N | add N [...] | main ID | delete ID | host-key N
                                      | accept-host-key N --fingerprint SHA256:...
                                      | add-key ID --public-key-file PATH
"""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from connectbatch import escaping
from connectbatch.cli import common as cc
from connectbatch.cli import transfer_flags
from connectbatch.cli.common import EXIT_OK, EXIT_RUN_FAILED, EXIT_UNUSABLE, Command
from connectbatch.errors import ConfigurationError
from connectbatch.models import Credential, Method
from connectbatch.services import CredentialInput, InvalidInputError
from connectbatch.store.host_keys import HostKey
from connectbatch.transfer.specs import AuthKind

# ------------------------------------------------------------------------------- run now


def _configure_pull(p: argparse.ArgumentParser) -> None:
    p.add_argument("connection", metavar="N", help="connection name or id")
    cc.json_flag(p)


def _run_pull(args: argparse.Namespace) -> int:
    svc = cc.services()
    run = svc.pull(args.connection, trigger="manual")
    cc.show_run_result(run, svc, args)
    return EXIT_RUN_FAILED if run.status in cc.NOT_LOADED else EXIT_OK


# --------------------------------------------------------------------------------- serve


def _configure_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-servers", action="store_true", help="do not start the hosted SFTP/FTP servers")
    p.add_argument(
        "--coordinator", action="store_true",
        help="distributed mode: the one process that schedules, owns the database and loads",
    )  # fmt: skip
    p.add_argument(
        "--standby", action="store_true",
        help="with --coordinator: when another coordinator runs, wait and take over when it stops",
    )  # fmt: skip


def _run_serve(args: argparse.Namespace) -> int:
    from connectbatch.engine import Engine

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
        force=True,
    )
    escaping.install()  # partner names in messages cannot forge lines or reach the terminal
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.coordinator:
        from connectbatch.cli.worker import run_coordinator

        return run_coordinator(args, stop)
    svc = cc.services()
    if svc.settings.mode == "distributed":  # an embedded engine would schedule beside the coordinator
        print(
            "connectbatch: error: CONNECTBATCH_MODE=distributed: start the one coordinator with "
            "`connectbatch serve --coordinator` and the workers with `connectbatch worker`",
            file=sys.stderr,
        )
        return EXIT_UNUSABLE
    engine = Engine(svc, svc.settings.mailbox)
    engine.start(servers=not args.no_servers)
    settings = svc.settings
    print(f"serving {settings.database}", flush=True)
    if engine.standing_by is not None:  # another engine schedules: this one waits to take over
        print(
            f"  standing by: the engine of {engine.standing_by} schedules for it; "
            "this one takes over when that one stops",
            flush=True,
        )
    for server in engine.servers:
        print(f"  {type(server).__name__} on {settings.bind}:{server.port}", flush=True)  # type: ignore[attr-defined]
    try:
        stop.wait()
    finally:
        engine.stop()
    return EXIT_OK


# --------------------------------------------------------------------------- credentials


def _configure_credentials(p: argparse.ArgumentParser) -> None:
    sub = cc.subcommands(p)
    listing = cc.leaf(sub, "list", "list a connection's credentials (never their secrets)", _cred_list)
    listing.add_argument("connection", metavar="N")
    cc.json_flag(listing)
    add = cc.leaf(sub, "add", "add new login details as main (re-connect / rotate)", _cred_add)
    add.add_argument("connection", metavar="N")
    add.add_argument("--name", default=None, help="credential name")
    add.add_argument("--username")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument("--key-file", type=Path, help="private key file (SFTP)")
    add.add_argument("--return-email")
    # The same key options as `connection add`: the error for an encrypted key asks for its
    # passphrase, so the command that reports it must take it.
    transfer_flags.add_credential_flags(add.add_argument_group("key"), editing=False)
    cc.json_flag(add)
    main = cc.leaf(sub, "main", "make a credential the main one", _cred_main)
    main.add_argument("credential_id", type=cc.positive, metavar="ID")
    main.add_argument(
        "--connection", metavar="N", default=None,
        help="a credential shared by several connections: main for this one (default: its owner)",
    )  # fmt: skip
    cc.json_flag(main)
    delete = cc.leaf(sub, "delete", "delete a credential", _cred_delete)
    delete.add_argument("credential_id", type=cc.positive, metavar="ID")
    cc.json_flag(delete)
    detach = cc.leaf(
        sub, "detach", "a connection stops using a credential set other connections share", _cred_detach
    )
    detach.add_argument("credential_id", type=cc.positive, metavar="ID")
    detach.add_argument("--connection", required=True, metavar="N", help="the connection that stops using it")
    cc.json_flag(detach)
    add_key = cc.leaf(
        sub, "add-key", "let a partner's SSH public key log in as a provisioned SFTP login", _cred_add_key
    )
    add_key.add_argument("credential_id", type=cc.positive, metavar="CREDENTIAL_ID")
    add_key.add_argument(
        "--public-key-file", required=True, metavar="PATH", help="OpenSSH public key (e.g. id_ed25519.pub)"
    )
    cc.json_flag(add_key)
    accept = cc.leaf(
        sub, "accept-host-key",
        "pin the SFTP server's new host key, after checking its fingerprint with the partner",
        _cred_accept,
    )  # fmt: skip
    accept.add_argument("connection", metavar="N")
    accept.add_argument(
        "--fingerprint", required=True, metavar="SHA256:...",
        help="the fingerprint you checked; must be the one the server presented",
    )  # fmt: skip
    cc.json_flag(accept)
    show = cc.leaf(sub, "host-key", "show the SFTP host key pinned for a connection's server", _cred_host_key)
    show.add_argument("connection", metavar="N")
    cc.json_flag(show)


# The flags of `credentials add` that a refused login field names (the key flags are in
# transfer_flags.FLAG_OF_FIELD).
_LOGIN_FLAGS = {"username": "--username", "password": "--password-stdin"}


def _cred_dict(c: Credential) -> dict[str, Any]:
    return {
        "id": c.id, "name": c.name, "kind": c.kind, "username": c.username,
        "main": c.is_main, "status": c.status, "last_error": c.last_error,
        "return_email": c.return_email, "host_key": c.host_key,
        "created_at": c.created_at, "updated_at": c.updated_at, "used_by": list(c.used_by),
    }  # fmt: skip


def _cred_list(args: argparse.Namespace) -> int:
    creds = cc.services().credentials(args.connection)
    if args.json:
        cc.print_json([_cred_dict(c) for c in creds])
        return EXIT_OK
    if not creds:
        print("no credentials")
        return EXIT_OK
    rows = [
        [str(c.id), c.name, "main" if c.is_main else "secondary", c.status, c.username or "-",
         cc.when(c.created_at), cc.when(c.updated_at), (c.host_key or "-")[:40], c.last_error or ""]
        for c in creds
    ]  # fmt: skip
    cc.table(["ID", "NAME", "ROLE", "STATUS", "USER", "CREATED", "UPDATED", "HOST KEY", "LAST ERROR"], rows)
    return EXIT_OK


def _cred_add(args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    key = None
    if args.key_file is not None:
        key = cc.small_text_file(args.key_file, "--key-file", cc.KEY_FILE_BYTES, "a private key")
    given = CredentialInput(
        name=args.name or "", username=args.username, password=password, private_key=key,
        return_email=args.return_email, auth=AuthKind(args.auth) if args.auth else None,
        passphrase=transfer_flags.read_passphrase(args, stdin_taken=args.password_stdin),
    )  # fmt: skip
    svc = cc.services()
    try:
        credential, provisioned = svc.add_credential(args.connection, given)
    except InvalidInputError as exc:
        if exc.field in transfer_flags.FLAG_OF_FIELD:
            raise transfer_flags.flag_error(exc) from None
        if exc.field in _LOGIN_FLAGS:
            flag = _LOGIN_FLAGS[exc.field]
            sftp = svc.connection(args.connection).method is Method.SFTP
            if exc.field == "password" and given.auth is None and sftp and not given.password:
                flag += " (or --key-file)"  # a missing secret: either is a login
            raise ConfigurationError(f"{flag}: {str(exc).removeprefix(exc.field + ': ')}") from None
        raise
    if args.json:
        payload = _cred_dict(credential)
        if provisioned is not None:
            payload["provisioned"] = provisioned.__dict__
        cc.print_json(payload)
        return EXIT_OK
    print(f"credential {credential.id} ({cc.one_line(credential.name)}) is now main")
    if provisioned is not None:
        print(f"  host {provisioned.host}:{provisioned.port}  user {provisioned.username}  "
              f"password {provisioned.password}")  # fmt: skip
        if provisioned.host_key_fingerprint:
            print(f"  host key {provisioned.host_key_fingerprint}")
        print("  (the password is shown once and cannot be shown again)")
    return EXIT_OK


def _cred_main(args: argparse.Namespace) -> int:
    credential = cc.services().make_main_credential(args.credential_id, args.connection)
    if args.json:
        cc.print_json(_cred_dict(credential))
        return EXIT_OK
    print(f"credential {credential.id} ({cc.one_line(credential.name)}) is now main")
    return EXIT_OK


def _cred_delete(args: argparse.Namespace) -> int:
    cc.services().delete_credential(args.credential_id)
    if args.json:
        cc.print_json({"deleted": args.credential_id})
        return EXIT_OK
    print(f"credential {args.credential_id} deleted")
    return EXIT_OK


def _cred_detach(args: argparse.Namespace) -> int:
    svc = cc.services()
    svc.detach_credential(args.credential_id, args.connection)
    connection = svc.connection(args.connection)
    if args.json:
        cc.print_json({"credential_id": args.credential_id, "detached": connection.name})
        return EXIT_OK
    print(f"{cc.one_line(connection.name)} no longer uses credential {args.credential_id}")
    return EXIT_OK


def _cred_add_key(args: argparse.Namespace) -> int:
    text = cc.small_text_file(
        args.public_key_file, "--public-key-file", cc.KEY_FILE_BYTES, "an OpenSSH public key"
    )
    try:
        fingerprint = cc.services().add_public_key(args.credential_id, text)
    except InvalidInputError as exc:
        if exc.field != "public_key":
            raise
        message = str(exc).removeprefix("public_key: ")
        raise ConfigurationError(f"--public-key-file: {args.public_key_file}: {message}") from None
    if args.json:
        cc.print_json({"credential_id": args.credential_id, "fingerprint": fingerprint})
        return EXIT_OK
    print(f"credential {args.credential_id}: key {fingerprint} may now log in")
    return EXIT_OK


def _host_key_dict(found: HostKey | None) -> dict[str, Any] | None:
    if found is None:
        return None
    return {
        "host": found.host, "port": found.port, "host_key": found.host_key,
        "fingerprint": found.fingerprint, "pinned_at": found.pinned_at,
        "presented_key": found.presented_key, "presented_fingerprint": found.presented_fingerprint,
        "presented_at": found.presented_at,
    }  # fmt: skip


def _cred_host_key(args: argparse.Namespace) -> int:
    found = cc.services().host_key(args.connection)
    if args.json:
        cc.print_json(_host_key_dict(found))
        return EXIT_OK
    if found is None or not (found.host_key or found.presented_key):
        print("no host key pinned yet: the next pull pins the key the server presents")
        return EXIT_OK
    print(f"server   {found.host}:{found.port}")
    print(f"pinned   {found.fingerprint or '-'}  ({cc.when(found.pinned_at)})")
    if found.presented_fingerprint:
        print(f"NEW KEY  {found.presented_fingerprint}  presented {cc.when(found.presented_at)}")
        print("  check it with the partner, then: connectbatch credentials accept-host-key "
              f"{shlex.quote(args.connection)} --fingerprint {found.presented_fingerprint}")  # fmt: skip
    return EXIT_OK


def _cred_accept(args: argparse.Namespace) -> int:
    accepted = cc.services().accept_host_key(args.connection, args.fingerprint)
    if args.json:
        cc.print_json(_host_key_dict(accepted))
        return EXIT_OK
    print(f"pinned host key {accepted.fingerprint} for {accepted.host}:{accepted.port}")
    return EXIT_OK


COMMANDS: dict[str, Command] = {
    "pull": Command("pull now for a connection and print the run (also: run N)", _configure_pull, _run_pull),
    "serve": Command("run the scheduler and hosted servers without the UI", _configure_serve, _run_serve),
    "credentials": Command(
        "list, add, rotate or delete a connection's credentials", _configure_credentials, cc.dispatch
    ),
}
