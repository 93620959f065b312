"""Typed settings of each transfer method: what a connection stores beside host, port and
folder to reach a partner's SFTP, FTP(S) or IMAP server.

One frozen dataclass per method (dlt-style specs): `check_spec` validates and normalises one
once, at the services boundary, with messages that name the field; the transports read the
fields as they are. Stored as JSON with the connection (`spec_to_json` / `spec_from_json`), so
a setting added here needs no migration: a missing key takes the dataclass default.

Secrets are not here: user names, passwords, private keys and passphrases belong to the
connection's credentials (encrypted), because a connection can hold several of them.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from connectbatch.errors import ConfigurationError
from connectbatch.models import Method


class FtpTls(StrEnum):
    NONE = "none"  # plain FTP: password and data in clear
    EXPLICIT = "explicit"  # AUTH TLS on the normal port (21), then PROT P
    IMPLICIT = "implicit"  # TLS from the first byte (port 990)


class ImapSecurity(StrEnum):
    SSL = "ssl"  # implicit TLS, port 993
    STARTTLS = "starttls"  # port 143, upgraded before login
    PLAIN = "plain"  # no TLS: only to a mail server on this machine


class AuthKind(StrEnum):
    """How a credential logs in to a partner's server: chosen by the person, never guessed."""

    PASSWORD = "password"
    KEY = "key"  # SSH private key (SFTP only), optionally with a passphrase


DEFAULT_IMAP_FLAG = "$ConnectBatchProcessed"
_FINGERPRINT = re.compile(r"SHA256:([A-Za-z0-9+/]{43})=?")
_KEYWORD = re.compile(r"[A-Za-z0-9$_.\-]{1,64}")
_SYSTEM_FLAGS = {"\\seen", "\\answered", "\\flagged", "\\draft"}


@dataclass(frozen=True)
class SftpSpec:
    """SFTP pull. `host_key_fingerprint` (`SHA256:…`, as `ssh-keygen -lf` prints it) pins the
    server's key before the first login; without it the first login pins what it sees."""

    host_key_fingerprint: str | None = None
    # Rarely needed tuning for unusual servers: exactly these ciphers (comma-separated), and
    # the size of each pipelined READ request in bytes (None: chosen from the server's banner).
    ciphers: str | None = None
    request_size: int | None = None


@dataclass(frozen=True)
class FtpSpec:
    """FTP or FTPS pull. `verify` checks the server certificate (against `ca_file` when
    given, else the system's CAs); `passive` is how nearly every server behind NAT works."""

    # New connections require TLS; plain FTP is a choice a person makes (and sees) per
    # connection. Connections made before this default keep what they had (migration 008).
    tls: FtpTls = FtpTls.EXPLICIT
    verify: bool = True
    ca_file: str | None = None
    passive: bool = True


@dataclass(frozen=True)
class ImapSpec:
    """IMAP pull of attachments. A message is marked done with `processed_flag` (a keyword,
    or a system flag such as `\\Seen`) unless `move_to` names a folder to move it to;
    `recipient` keeps only mail addressed to that address (plus-addressed push mailboxes);
    `allowed_senders` (addresses, or `@domain` for a whole domain), when any are given, keeps
    only mail from them: other mail is recorded as skipped and marked processed."""

    security: ImapSecurity = ImapSecurity.SSL
    verify: bool = True
    ca_file: str | None = None
    processed_flag: str = DEFAULT_IMAP_FLAG
    move_to: str | None = None
    recipient: str | None = None
    allowed_senders: tuple[str, ...] = ()


TransferSpec = SftpSpec | FtpSpec | ImapSpec
_SPEC_OF: dict[Method, type[SftpSpec] | type[FtpSpec] | type[ImapSpec]] = {
    Method.SFTP: SftpSpec,
    Method.FTP: FtpSpec,
    Method.EMAIL: ImapSpec,
}


def spec_type(method: Method | str) -> type[SftpSpec] | type[FtpSpec] | type[ImapSpec]:
    return _SPEC_OF[Method(method)]


def default_spec(method: Method | str) -> TransferSpec:
    return spec_type(method)()


def spec_to_json(spec: TransferSpec) -> str:
    return json.dumps({k: (str(v) if isinstance(v, StrEnum) else v) for k, v in asdict(spec).items()})


def spec_from_json(method: Method | str, text: str | None) -> TransferSpec:
    """What the store holds; unknown keys (a newer version's) are ignored, missing ones default."""
    kind = spec_type(method)
    data = json.loads(text) if text else {}
    known = {f.name for f in fields(kind)}
    values: dict[str, Any] = {
        k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in known
    }  # JSON has no tuples
    return _coerce(kind(**values))


def with_changes(spec: TransferSpec, **changes: Any) -> TransferSpec:
    """The spec with the given fields changed (None = keep); a field the method does not have
    is an error naming it, so a `--ftp-tls` given to an SFTP connection is not silently lost."""
    given = {k: v for k, v in changes.items() if v is not None}
    known = {f.name for f in fields(spec)}
    for name in given:
        if name not in known:
            raise ConfigurationError(f"{name}: not a setting of {_method_word(spec)} connections")
    return _coerce(replace(spec, **given))


def _ciphers(listed: str | None) -> str | None:
    """The SFTP ciphers a connection asks for, each one our SSH client has: a name it lacks
    was saved and failed every pull ("unsupported SFTP cipher(s) ..."; an operator audit)."""
    if listed is None:
        return None
    import paramiko  # only here: the app's forms check specs without paying for its import

    known: tuple[str, ...] = paramiko.Transport._preferred_ciphers
    unknown = [c for c in listed.split(",") if c not in known]
    if unknown:
        raise ConfigurationError(f"ciphers: unsupported {', '.join(unknown)} (available: {', '.join(known)})")
    return listed


def check_spec(spec: TransferSpec, host: str | None) -> TransferSpec:
    """Validate and normalise once; raises ConfigurationError naming the field."""
    spec = _coerce(spec)
    if isinstance(spec, SftpSpec):
        if not spec.request_size:  # 0 or empty: chosen from the server's banner
            spec = replace(spec, request_size=None)
        elif not 4096 <= int(spec.request_size) <= 4 * 1024 * 1024:
            raise ConfigurationError("request_size: must be between 4096 and 4194304 bytes")
        ciphers = ",".join(c.strip() for c in (spec.ciphers or "").split(",") if c.strip()) or None
        return replace(
            spec, host_key_fingerprint=_fingerprint(spec.host_key_fingerprint), ciphers=_ciphers(ciphers)
        )
    if isinstance(spec, FtpSpec):
        return replace(spec, ca_file=_ca_file(spec.ca_file))
    if spec.security is ImapSecurity.PLAIN and host and not is_loopback(host):
        raise ConfigurationError(
            f"security: plain IMAP to {host} would send the password unencrypted: use ssl or "
            "starttls (plain is meant for a mail server on this machine)"
        )
    flag = (spec.processed_flag or DEFAULT_IMAP_FLAG).strip()
    if flag.lower() not in _SYSTEM_FLAGS and not _KEYWORD.fullmatch(flag):
        raise ConfigurationError(
            f"processed_flag: {flag!r} is not usable: use a keyword of letters, digits and $_.- "
            "or one of \\Seen \\Answered \\Flagged \\Draft"
        )
    move_to = mailbox_name(spec.move_to or "", "move_to") or None
    recipient = (spec.recipient or "").strip() or None
    if recipient is not None and (
        "@" not in recipient or any(ch.isspace() or ch in '"\\()<>,;' for ch in recipient)
    ):
        raise ConfigurationError(f"recipient: {recipient!r} is not an e-mail address")
    return replace(
        spec, ca_file=_ca_file(spec.ca_file), processed_flag=flag, move_to=move_to, recipient=recipient,
        allowed_senders=allowed_senders(spec.allowed_senders),
    )  # fmt: skip


def allowed_senders(given: object) -> tuple[str, ...]:
    """Sender addresses (`partner@example.com`) or whole domains (`@example.com`), lower-case,
    without duplicates. A string is split on commas and white space (forms, JSON by hand)."""
    items = given.replace(",", " ").split() if isinstance(given, str) else list(given or ())  # type: ignore[call-overload]
    found: list[str] = []
    for item in items:
        text = str(item).strip().lower()
        if not text:
            continue
        local, at, domain = text.rpartition("@")
        if (
            not at
            or not domain
            or "." not in domain.strip(".")
            or any(ch.isspace() or ch in '"\\()<>,;:[]' or ord(ch) < 32 for ch in text)
            or "@" in local
        ):
            raise ConfigurationError(
                f"allowed_senders: {item!r} is not an e-mail address or @domain (e.g. @partner.example)"
            )
        if text not in found:
            found.append(text)
    return tuple(found)


def mailbox_name(folder: str, field: str = "folder") -> str:
    """Mailbox names are not paths, but connection folders are written as absolute paths;
    `/INBOX` means `INBOX`. Wildcards and control characters are refused."""
    name = folder.strip().strip("/")
    if any(ch in name for ch in "*%\r\n\0"):
        raise ConfigurationError(f"{field}: mailbox {folder!r} contains * % or control characters")
    return name


def is_loopback(host: str) -> bool:
    if host.lower() in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _coerce(spec: TransferSpec) -> TransferSpec:
    """Enum fields from their string values (JSON, CLI, forms), with a readable error."""
    try:
        if isinstance(spec, FtpSpec):
            return replace(spec, tls=FtpTls(str(spec.tls).strip().lower()), verify=_bool(spec.verify))
        if isinstance(spec, ImapSpec):
            return replace(
                spec, security=ImapSecurity(str(spec.security).strip().lower()), verify=_bool(spec.verify)
            )
    except ConfigurationError:
        raise
    except ValueError:
        kind, field = (FtpTls, "tls") if isinstance(spec, FtpSpec) else (ImapSecurity, "security")
        choices = ", ".join(e.value for e in kind)
        raise ConfigurationError(f"{field}: {getattr(spec, field)!r} is not one of {choices}") from None
    return spec


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "yes", "1", "on"}:
        return True
    if text in {"false", "no", "0", "off"}:
        return False
    raise ConfigurationError(f"verify: {value!r} is not true or false")


def _fingerprint(given: str | None) -> str | None:
    """`SHA256:<43 base64 characters>` as OpenSSH prints it (the trailing `=` is optional)."""
    text = (given or "").strip()
    if not text:
        return None
    match = _FINGERPRINT.fullmatch(text)
    if match is None:
        raise ConfigurationError(
            f"host_key_fingerprint: {text!r} is not a SHA256 fingerprint such as "
            "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s (ssh-keygen -lf prints it)"
        )
    try:
        if len(base64.b64decode(match[1] + "=")) != 32:
            raise ValueError
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"host_key_fingerprint: {text!r} does not decode to 32 bytes") from None
    return f"SHA256:{match[1]}"


def parse_fingerprint(given: str) -> str:
    """A host-key fingerprint a person typed, in the canonical `SHA256:...` form (for
    accepting a changed key); ConfigurationError when it is empty or not one."""
    checked = _fingerprint(given)
    if checked is None:
        raise ConfigurationError("fingerprint: is required (SHA256:..., as ssh-keygen -lf prints it)")
    return checked


def _ca_file(given: str | None) -> str | None:
    text = (given or "").strip()
    if not text:
        return None
    path = Path(text).expanduser()
    if not path.is_file():
        raise ConfigurationError(
            f"ca_file: {text!r} is not a readable file (a PEM bundle of CA certificates)"
        )
    return str(path.resolve())


def _method_word(spec: TransferSpec) -> str:
    return {SftpSpec: "SFTP", FtpSpec: "FTP", ImapSpec: "e-mail"}[type(spec)]
