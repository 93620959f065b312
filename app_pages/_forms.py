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
from connectbatch.models import FIXED_ABBREVIATIONS, Connection, LateEvents, Method
from connectbatch.services import CredentialInput
from connectbatch.transfer.specs import (
    AuthKind,
)

FieldErrors = Callable[..., None]  # shows the error of the named fields, if there is one


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


def forget(keys: Keys, keep: str) -> None:
    """Drop what one form's widgets hold (all but `keep`), so that they are seeded again from
    the stored values on this run: a form filled before someone else saved shows what is saved."""
    least = len(keys.prefix) + len(keys.suffix)  # `edit_7`, the list's button, is not the form's
    for key in [k for k in st.session_state if isinstance(k, str) and k != keep and len(k) > least]:
        if key.startswith(keys.prefix) and key.endswith(keys.suffix):
            del st.session_state[key]


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
            help=(
                "Actions can be modified or reversed until they lock this many days after the event. "
                "A change applies to actions created from then on; those created before keep their lock date."
            ),
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
        from app_pages import _syncback

        entered |= _syncback.sync_back_form(keys, c, errors)
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
    zones = sorted((zoneinfo.available_timezones() - set(FIXED_ABBREVIATIONS)) | {c.timezone})
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
