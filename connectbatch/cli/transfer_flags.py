"""The flags of `connection add` / `edit` that set a connection's typed transfer settings
(`connectbatch.transfer.specs`) and how a credential logs in (password or key, passphrase).

Each setting of SftpSpec, FtpSpec and ImapSpec has one flag here, so everything a screen can
set, a script can set too. A flag that does not belong to the connection's method is refused
by name rather than silently ignored. Secrets never come from argv: the key passphrase is read
from standard input or a file, like the password.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from connectbatch import services
from connectbatch.cli import common as cc
from connectbatch.errors import ConfigurationError
from connectbatch.models import Method, Methodology
from connectbatch.transfer.specs import (
    AuthKind,
    FtpTls,
    ImapSecurity,
    TransferSpec,
    default_spec,
    with_changes,
)

# (flag, spec field, argparse keywords)
SPEC_FLAGS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--ftp-tls", "tls", {"choices": [t.value for t in FtpTls],
                          "help": "FTP: none, explicit (AUTH TLS) or implicit (port 990) TLS"}),
    ("--tls-verify", "verify", {"action": argparse.BooleanOptionalAction,
                                "help": "FTP/IMAP: check the server's certificate (default: yes)"}),
    ("--ca-file", "ca_file", {"metavar": "PATH",
                              "help": "FTP/IMAP: PEM file of the CA(s) to trust instead of the system's"}),
    ("--passive", "passive", {"action": argparse.BooleanOptionalAction,
                              "help": "FTP: passive mode (default: yes)"}),
    ("--imap-security", "security", {"choices": [s.value for s in ImapSecurity],
                                     "help": "e-mail: ssl (993), starttls (143) or plain (local)"}),
    ("--imap-processed-flag", "processed_flag", {"metavar": "FLAG",
                                                 "help": "e-mail: keyword that marks a message done"}),
    ("--imap-move-to", "move_to", {"metavar": "FOLDER",
                                   "help": "e-mail: move processed messages to this folder instead"}),
    ("--imap-recipient", "recipient", {"metavar": "ADDRESS",
                                       "help": "e-mail: only messages addressed to this address"}),
    ("--imap-allowed-sender", "allowed_senders", {"metavar": "ADDRESS|@DOMAIN", "action": "append",
                                                  "help": "e-mail: accept mail only from these senders "
                                                  "(repeat; '' clears the list)"}),
    ("--host-key-fingerprint", "host_key_fingerprint", {"metavar": "SHA256:...",
                                                        "help": "SFTP: the server key's fingerprint, "
                                                        "checked before the first login"}),
    ("--sftp-ciphers", "ciphers", {"metavar": "LIST", "help": "SFTP: only these ciphers (comma-separated)"}),
    ("--sftp-request-size", "request_size", {"metavar": "BYTES", "type": cc.whole,
                                             "help": "SFTP: bytes per read request (0: automatic)"}),
)  # fmt: skip
FLAG_OF_FIELD = {field: flag for flag, field, _keywords in SPEC_FLAGS} | {
    "auth": "--auth",
    "private_key": "--key-file",
    "passphrase": "--key-passphrase-stdin",
}


def add_flags(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group(
        "transfer settings", "how to reach the partner's server; an empty value clears a path or name"
    )
    for flag, dest, keywords in SPEC_FLAGS:
        group.add_argument(flag, dest=f"spec_{dest}", default=None, **keywords)


def add_credential_flags(creds: argparse._ArgumentGroup, *, editing: bool) -> None:
    suppress: dict[str, Any] = {"default": argparse.SUPPRESS} if editing else {}
    creds.add_argument("--auth", choices=[a.value for a in AuthKind],
                       help="log in with a password or an SSH key (SFTP); default: the secret given",
                       **suppress)  # fmt: skip
    creds.add_argument("--key-passphrase-stdin", action="store_true",
                       help="read the private key's passphrase from standard input")  # fmt: skip
    creds.add_argument("--key-passphrase-file", metavar="PATH", type=Path,
                       help="read the private key's passphrase from this file", **suppress)  # fmt: skip


def spec_changes(args: argparse.Namespace) -> dict[str, Any]:
    return {
        dest: getattr(args, f"spec_{dest}")
        for _flag, dest, _keywords in SPEC_FLAGS
        if getattr(args, f"spec_{dest}", None) is not None
    }


def apply(
    args: argparse.Namespace, method: Method | str, current: TransferSpec | None
) -> TransferSpec | None:
    """The connection's settings with the flags given applied; None when none was given."""
    changes = spec_changes(args)
    if not changes:
        return None
    try:
        return with_changes(current or default_spec(method), **changes)
    except ConfigurationError as exc:
        raise flag_error(exc) from None


def flag_error(exc: Exception) -> ConfigurationError:
    """`tls: not a setting of SFTP connections` -> `--ftp-tls: not a setting of ...`."""
    field, _, message = str(exc).partition(": ")
    flag = FLAG_OF_FIELD.get(field)
    return ConfigurationError(f"{flag}: {message}" if flag and message else str(exc))


def read_passphrase(args: argparse.Namespace, stdin_taken: bool) -> str | None:
    from_stdin = bool(getattr(args, "key_passphrase_stdin", False))
    path: Path | None = getattr(args, "key_passphrase_file", None)
    if from_stdin and path is not None:
        raise ConfigurationError("give either --key-passphrase-stdin or --key-passphrase-file, not both")
    if from_stdin:
        if stdin_taken:
            raise ConfigurationError(
                "--key-passphrase-stdin: standard input already holds the password; use --key-passphrase-file"
            )
        return sys.stdin.read().rstrip("\r\n") or None
    if path is not None:
        text = cc.small_text_file(path, "--key-passphrase-file", cc.KEY_FILE_BYTES, "a key's passphrase")
        return text.rstrip("\r\n") or None
    return None


def describe(spec: TransferSpec | None) -> str:
    """One line for `connection show`: the settings that differ from nothing-set."""
    if spec is None:
        return "-"
    parts = []
    for flag, dest, _keywords in SPEC_FLAGS:
        if not hasattr(spec, dest):
            continue
        value = getattr(spec, dest)
        if value is None or value == "" or value == ():
            continue
        if isinstance(value, tuple):
            value = ",".join(value)
        if isinstance(value, bool):
            parts.append(flag.removeprefix("--") if value else "no-" + flag.removeprefix("--"))
        else:
            parts.append(f"{flag.removeprefix('--')} {value}")
    return ", ".join(parts) or "-"


def read_password(args: argparse.Namespace) -> str | None:
    """--password or --password-stdin (one of them): the secret never needs to be in argv."""
    given: str | None = getattr(args, "password", None)
    if args.password_stdin:
        if given is not None:
            raise ConfigurationError("give either --password or --password-stdin, not both")
        given = sys.stdin.read().rstrip("\r\n")
        if not given:
            raise ConfigurationError("--password-stdin: standard input held no password")
    return given


def credential_input(
    args: argparse.Namespace, methodology: Methodology | str
) -> services.CredentialInput | None:
    """The credential flags of `connection add` / `edit` as one input, or None when none was
    given; a push connection's login is provisioned by us, so its secrets are refused."""
    password = read_password(args)
    username: str | None = getattr(args, "username", None)
    name: str | None = getattr(args, "credential_name", None)
    key_file: Path | None = getattr(args, "key_file", None)
    key = (
        None
        if key_file is None
        else cc.small_text_file(key_file, "--key-file", cc.KEY_FILE_BYTES, "a private key")
    )
    passphrase = read_passphrase(args, stdin_taken=bool(args.password_stdin))
    auth_flag: str | None = getattr(args, "auth", None)
    auth = AuthKind(auth_flag) if auth_flag else None
    if username is None and password is None and key is None and name is None and auth is None:
        if passphrase is not None:
            raise ConfigurationError("a key passphrase was given without --key-file")
        return None
    pushed = Methodology(methodology) in (Methodology.PUSH, Methodology.PULL_FROM_US)
    if pushed and (username is not None or password is not None or key is not None):
        raise ConfigurationError(
            "--username, --password and --key-file are for pull connections; "
            "ConnectBatch provisions the login of a push or pull_from_us connection"
        )
    return services.CredentialInput(
        name=name or "", username=username, password=password, private_key=key, auth=auth,
        passphrase=passphrase,
    )  # fmt: skip
