"""The connection forms the wizard and the connection's Edit and Re-connect share: pattern,
location (folder, host, port), the method's typed settings (TLS, certificates, IMAP flags,
the SFTP host key...), the login (password or SSH key), and schedule and file format.

Each form draws its widgets and returns what they hold, so a screen can branch on a choice
made in the same step. A widget gets its starting value from the connection or login given,
put in session state before it is drawn: the same code works inside an `st.form` (Edit) and
outside one (wizard), and a widget shown again after a step away starts from the kept value.
Keys come from `Keys` so the wizard's `wiz_folder` and the Edit tab's `edit_folder_<id>` stay
stable for tests.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

import streamlit as st

from app_pages import _schedule, _ui
from connectbatch.models import Connection, LateEvents, Method
from connectbatch.services import CredentialInput
from connectbatch.transfer.specs import (
    DEFAULT_IMAP_FLAG,
    AuthKind,
    FtpSpec,
    FtpTls,
    ImapSecurity,
    ImapSpec,
    SftpSpec,
    TransferSpec,
)

FieldErrors = Callable[..., None]  # shows the error of the named fields, if there is one

FTP_TLS = {
    FtpTls.NONE: "None (plain FTP)",
    FtpTls.EXPLICIT: "Explicit (AUTH TLS, port 21)",
    FtpTls.IMPLICIT: "Implicit (TLS from the start, port 990)",
}
IMAP_SECURITY = {
    ImapSecurity.SSL: "SSL/TLS (port 993)",
    ImapSecurity.STARTTLS: "STARTTLS (port 143)",
    ImapSecurity.PLAIN: "Plain (a mail server on this machine only)",
}


def _no_errors(*fields: str) -> None:
    """The Edit tab shows a save's error under the form, not field by field."""


@dataclass(frozen=True)
class Keys:
    """Widget keys of one screen: `wiz_` + name, or `edit_` + name + `_<connection id>`."""

    prefix: str
    suffix: str = ""

    def __call__(self, name: str) -> str:
        return f"{self.prefix}{name}{self.suffix}"


def seed(key: str, current: Any, options: Sequence[Any] | None = None) -> None:
    """Give a widget its starting value unless it already holds one (of the options).
    Choices stored as enums are seeded as their plain values: the widgets offer strings, and
    Streamlit would try to turn an enum value back into its own class."""
    if isinstance(current, Enum):
        current = current.value
    if key in st.session_state and (options is None or st.session_state[key] in options):
        return
    if options is not None and current not in options:
        current = options[0]
    st.session_state[key] = current


def _text(value: str) -> str | None:
    return value.strip() or None


# --------------------------------------------------------------------------- where the files are


def pattern_input(keys: Keys, method: Method, current: str, errors: FieldErrors = _no_errors) -> str:
    seed(keys("pattern"), current)
    entered = st.text_input(
        "Attachment file name pattern" if method is Method.EMAIL else "File name pattern",
        key=keys("pattern"),
        placeholder="Conversions_202?_*.csv",
        help="`*` matches any sequence of characters, `?` any single character. "
        "Matching is case-sensitive; names ending in .part or .tmp never match.",
    )
    errors("pattern")
    return entered


def location_form(
    keys: Keys, method: Method, c: Connection, errors: FieldErrors = _no_errors
) -> dict[str, Any]:
    """Folder (or mailbox), host and port of the partner's server a pull reads."""
    email = method is Method.EMAIL
    seed(keys("folder"), c.folder or ("INBOX" if email else ""))
    if email:
        folder = st.text_input(
            "Mailbox folder", key=keys("folder"), help="The IMAP folder to read, usually INBOX."
        )
    else:
        folder = st.text_input(
            "Folder",
            key=keys("folder"),
            placeholder="/home/AcmeAdvertiser/Conversions",
            help="The absolute directory path on the partner's server that holds the files.",
        )
        if folder and not folder.startswith("/"):
            st.warning("The folder must be an absolute path, starting with /.")
    errors("folder")
    host, port = st.columns([3, 1])
    seed(keys("host"), c.host or "")
    entered_host = host.text_input(
        "IMAP host" if email else "Host",
        key=keys("host"),
        placeholder="imap.example.com" if email else "sftp.example.com",
    )
    seed(keys("port"), c.port)
    entered_port = port.number_input(
        "Port",
        key=keys("port"),
        min_value=1,
        max_value=65535,
        step=1,
        value=None,
        placeholder=f"{_ui.DEFAULT_PORTS[method]} (standard)",
    )
    errors("host", "port")
    return {"folder": _text(folder), "host": _text(entered_host), "port": entered_port}


# --------------------------------------------------------------------------- the method's settings


def transfer_form(keys: Keys, spec: TransferSpec, errors: FieldErrors = _no_errors) -> TransferSpec:
    """The typed settings of the connection's method (see connectbatch/transfer/specs.py),
    as entered; the services check them."""
    if isinstance(spec, FtpSpec):
        return _ftp_form(keys, spec, errors)
    if isinstance(spec, ImapSpec):
        return _imap_form(keys, spec, errors)
    return _sftp_form(keys, spec, errors)


def _certificate(
    keys: Keys, verify: bool, ca_file: str | None, errors: FieldErrors
) -> tuple[bool, str | None]:
    left, right = st.columns([1, 2], vertical_alignment="bottom")
    seed(keys("verify"), verify)
    checked = left.checkbox(
        "Verify the server certificate",
        key=keys("verify"),
        help="Off only for a test server with a self-signed certificate.",
    )
    seed(keys("ca_file"), ca_file or "")
    path = right.text_input(
        "CA file (optional)",
        key=keys("ca_file"),
        placeholder="/etc/ssl/partner-ca.pem",
        help="A PEM bundle of the CA certificates to trust; empty: the system's.",
    )
    errors("verify", "ca_file")
    return checked, _text(path)


def _ftp_form(keys: Keys, spec: FtpSpec, errors: FieldErrors) -> FtpSpec:
    options = list(FTP_TLS)
    seed(keys("ftp_tls"), spec.tls, options)
    tls = st.radio("TLS", options, key=keys("ftp_tls"), format_func=lambda t: FTP_TLS[t], horizontal=True)
    errors("tls")
    verify, ca_file = _certificate(keys, spec.verify, spec.ca_file, errors)
    seed(keys("ftp_passive"), spec.passive)
    passive = st.checkbox(
        "Passive mode",
        key=keys("ftp_passive"),
        help="How nearly every server behind a firewall or NAT works; off: active mode.",
    )
    errors("passive")
    return replace(spec, tls=tls, verify=verify, ca_file=ca_file, passive=passive)


def _imap_form(keys: Keys, spec: ImapSpec, errors: FieldErrors) -> ImapSpec:
    options = list(IMAP_SECURITY)
    seed(keys("imap_security"), spec.security, options)
    security = st.radio(
        "Security",
        options,
        key=keys("imap_security"),
        format_func=lambda s: IMAP_SECURITY[s],
        horizontal=True,
    )
    errors("security")
    verify, ca_file = _certificate(keys, spec.verify, spec.ca_file, errors)
    flag, move = st.columns(2)
    seed(keys("imap_processed_flag"), spec.processed_flag)
    processed_flag = flag.text_input(
        "Mark read messages with the flag",
        key=keys("imap_processed_flag"),
        help=f"A keyword such as {DEFAULT_IMAP_FLAG}, or \\Seen, \\Answered, \\Flagged, \\Draft.",
    )
    seed(keys("imap_move_to"), spec.move_to or "")
    move_to = move.text_input(
        "…or move them to the folder",
        key=keys("imap_move_to"),
        placeholder="INBOX/Done",
        help="When given, read messages are moved here instead of flagged.",
    )
    errors("processed_flag", "move_to")
    seed(keys("imap_recipient"), spec.recipient or "")
    recipient = st.text_input(
        "Only mail addressed to (optional)",
        key=keys("imap_recipient"),
        placeholder="inbox+acme@example.com",
        help="Keep only messages sent to this address, e.g. a plus-address of a shared mailbox.",
    )
    errors("recipient")
    seed(keys("imap_allowed_senders"), ", ".join(spec.allowed_senders))
    senders = st.text_input(
        "Only mail from (optional)",
        key=keys("imap_allowed_senders"),
        placeholder="reports@partner.example, @partner.example",
        help="Addresses, or @domain for a whole domain, separated by commas. Mail from anyone "
        "else is not loaded: the run lists it as skipped. Empty: any sender.",
    )
    errors("allowed_senders")
    return replace(
        spec, security=security, verify=verify, ca_file=ca_file,
        processed_flag=processed_flag.strip() or DEFAULT_IMAP_FLAG, move_to=_text(move_to),
        recipient=_text(recipient),
        allowed_senders=tuple(x.strip() for x in senders.replace(",", " ").split() if x.strip()),
    )  # fmt: skip


def _sftp_form(keys: Keys, spec: SftpSpec, errors: FieldErrors) -> SftpSpec:
    seed(keys("sftp_fingerprint"), spec.host_key_fingerprint or "")
    fingerprint = st.text_input(
        "Host key fingerprint (optional)",
        key=keys("sftp_fingerprint"),
        placeholder="SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
        help="The server's key as `ssh-keygen -lf` prints it, from the partner: checked at the "
        "first login. Empty: the first login pins the key the server presents.",
    )
    errors("host_key_fingerprint")
    with st.expander("Advanced"):
        seed(keys("sftp_ciphers"), spec.ciphers or "")
        ciphers = st.text_input(
            "Ciphers (comma-separated)",
            key=keys("sftp_ciphers"),
            placeholder="aes256-gcm@openssh.com,aes128-ctr",
            help="Only for a server that needs particular ciphers; empty: the usual choice.",
        )
        seed(keys("sftp_request_size"), spec.request_size)
        request_size = st.number_input(
            "Request size (bytes)",
            key=keys("sftp_request_size"),
            min_value=4096,
            max_value=4 * 1024 * 1024,
            step=4096,
            value=None,
            placeholder="chosen from the server",
            help="The size of each read request; empty: chosen from the server's software.",
        )
        errors("ciphers", "request_size")
    return replace(
        spec, host_key_fingerprint=_text(fingerprint), ciphers=_text(ciphers),
        request_size=int(request_size) if request_size else None,
    )  # fmt: skip


# --------------------------------------------------------------------------- the login


def credential_form(
    keys: Keys, method: Method, given: CredentialInput, errors: FieldErrors = _no_errors
) -> tuple[CredentialInput, str | None]:
    """Username and password, or (SFTP only) username and SSH private key with its
    passphrase: the person chooses. Returns the login and the uploaded key's file name."""
    auth = AuthKind.PASSWORD
    if method is Method.SFTP:
        options = list(_ui.LOGIN_WITH)
        seed(keys("auth"), str(given.auth or AuthKind.PASSWORD), options)
        auth = AuthKind(
            st.radio(
                "Log in with",
                options,
                key=keys("auth"),
                format_func=lambda a: _ui.LOGIN_WITH[a],
                horizontal=True,
            )
        )
        errors("auth")
    seed(keys("username"), given.username or "")
    username = st.text_input("Username", key=keys("username"), autocomplete="off")
    errors("username")
    if auth is AuthKind.PASSWORD:
        seed(keys("password"), given.password or "")
        # live + ignore: what is typed is staged after a short pause, without a rerun. The
        # field's own Show-password toggle takes the focus on Tab, so the field never blurs and
        # a value left that way would otherwise never reach Test connection.
        password = st.text_input(
            "Password", key=keys("password"), type="password", autocomplete="new-password",
            live=True, on_change="ignore",
        )  # fmt: skip
        errors("password")
        return replace(given, auth=auth, username=_text(username), password=password or None), None
    upload = st.file_uploader("Private key (OpenSSH or PEM)", key=keys("key_file"))
    private_key, file_name = given.private_key, None
    if upload is not None:
        private_key, file_name = upload.getvalue().decode("utf-8", "replace"), upload.name
    errors("private_key")
    seed(keys("passphrase"), given.passphrase or "")
    passphrase = st.text_input(
        "Key passphrase",
        key=keys("passphrase"),
        type="password",
        autocomplete="off",
        live=True,  # as the password: its Show toggle takes the focus on Tab
        on_change="ignore",
        help="Only for an encrypted private key; empty otherwise.",
    )
    errors("passphrase")
    entered = replace(
        given, auth=auth, username=_text(username), private_key=private_key, passphrase=passphrase or None
    )
    return entered, file_name


def return_email_input(keys: Keys, current: str | None, errors: FieldErrors = _no_errors) -> str | None:
    seed(keys("return_email"), current or "")
    entered = st.text_input(
        "Return e-mail address",
        key=keys("return_email"),
        placeholder="ops@partner.example",
        help="The results of every file are e-mailed here.",
    )
    errors("return_email")
    return _text(entered)


# --------------------------------------------------------------------------- schedule & file format

LATE_EVENTS_LABELS = {
    LateEvents.LOCK.value: "Create the action LOCKED (with the reason)",
    LateEvents.REFUSE.value: "Refuse the row",
}


def run_settings_form(
    keys: Keys, c: Connection, *, pull: bool, inbound: bool, live: bool, errors: FieldErrors = _no_errors
) -> dict[str, Any]:
    """Schedule, lock period, file age, time zone, encoding, delimiter and what happens to a
    file after a successful run. `live`: widgets re-run the page when they change (not in an
    `st.form`), so the archive folder can be shown only when archiving."""
    entered: dict[str, Any] = {}
    if pull or not inbound:
        seed(keys("schedule"), c.schedule or "")
        entered["schedule"] = _text(
            st.text_input(
                "Schedule (cron)",
                key=keys("schedule"),
                placeholder="0 6 * * *",
                help="When to "
                + ("collect files" if pull else "write the export")
                + ": minute hour day-of-month month day-of-week, in UTC. Empty: only Run now.",
            )
        )
        schedule_preview(entered["schedule"], saved=not live)
        errors("schedule")
    if inbound:
        seed(keys("lock_days"), c.lock_days)
        entered["lock_days"] = st.number_input(
            "Lock period (days)",
            key=keys("lock_days"),
            min_value=0,
            max_value=3650,
            step=1,
            help="Actions can be modified or reversed until they lock this many days after the event.",
        )
        errors("lock_days")
        late_options = [p.value for p in LateEvents]
        seed(keys("late_events"), str(c.late_events), late_options)
        entered["late_events"] = st.selectbox(
            "Events older than the lock period",
            late_options,
            key=keys("late_events"),
            format_func=lambda p: LATE_EVENTS_LABELS[p],
            help="Validation accepts events up to 90 days old; an action for an older event than "
            "the lock period would already be due to lock. Lock: create it LOCKED, with the "
            "reason. Refuse: reject the row. Either way the results file and the validation "
            "report say so.",
        )
        errors("late_events")
    if pull:
        seed(keys("min_age"), c.min_age_seconds)
        entered["min_age_seconds"] = st.number_input(
            "Minimum file age (seconds)",
            key=keys("min_age"),
            min_value=0,
            step=60,
            help="Files younger than this are left for the next run (still being written).",
        )
        errors("min_age_seconds")
    if inbound:
        entered |= _file_format(keys, c, errors)
    if pull:
        options = list(_ui.AFTER_SUCCESS)
        seed(keys("after_success"), c.after_success, options)
        after = st.selectbox(
            "After a successful run",
            options,
            key=keys("after_success"),
            format_func=lambda a: _ui.AFTER_SUCCESS[a],
        )
        entered["after_success"] = after
        if after == "archive" or not live:
            seed(keys("archive_folder"), c.archive_folder or "")
            entered["archive_folder"] = _text(
                st.text_input(
                    "Archive folder" if live else "Archive folder (when archiving)",
                    key=keys("archive_folder"),
                    placeholder="/home/AcmeAdvertiser/done",
                )
            )
        errors("after_success", "archive_folder")
    if inbound:
        from app_pages import _redelivery  # it builds on this module's seed/Keys

        entered |= _redelivery.redelivery_form(keys, c, errors)
    return entered


def schedule_preview(expression: str | None, *, saved: bool = False) -> None:
    """The schedule in plain words and its next three runs, under the cron field. In a form
    (`saved`) it describes the schedule as saved: the form's field reruns only on Save."""
    shown = _schedule.lines(expression)
    if not shown:
        return
    st.caption("  \n".join(shown), help="Saved schedule" if saved else None)


def _file_format(keys: Keys, c: Connection, errors: FieldErrors) -> dict[str, Any]:
    """Time zone, encoding and delimiter; a stored value not in the lists stays choosable."""
    zones = sorted(zoneinfo.available_timezones() | {c.timezone})
    seed(keys("timezone"), c.timezone, zones)
    timezone = st.selectbox("Time zone of dates without an offset", zones, key=keys("timezone"))
    errors("timezone")
    encodings = list(_ui.ENCODINGS) + ([c.encoding] if c.encoding and c.encoding not in _ui.ENCODINGS else [])
    delimiters = list(_ui.DELIMITERS) + ([c.delimiter] if c.delimiter not in _ui.DELIMITERS else [])
    left, right = st.columns(2)
    seed(keys("encoding"), c.encoding or "", encodings)
    encoding = left.selectbox(
        "Encoding", encodings, key=keys("encoding"), format_func=lambda e: _ui.ENCODINGS.get(e, e)
    )
    seed(keys("delimiter"), c.delimiter, delimiters)
    delimiter = right.selectbox(
        "Delimiter", delimiters, key=keys("delimiter"), format_func=lambda d: _ui.DELIMITERS.get(d, repr(d))
    )
    errors("encoding", "delimiter")
    return {"timezone": timezone, "encoding": encoding or None, "delimiter": delimiter}
