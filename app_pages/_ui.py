"""Small pieces the Connections screens share: status badges, times, labels, error display
and readable validation outcomes (the provisioned-credentials dialog is _provisioned.py).

The connection pages use this module, and the File format page its ENCODINGS and DELIMITERS
(the one table of the choices a file can be read with; a test keeps it the only one). It
calls `connectbatch.webapp` and the services' data classes, never the store.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import streamlit as st

from connectbatch import schemas, webapp
from connectbatch.errors import ConnectBatchError
from connectbatch.escaping import csv_cell, markdown_text, visible
from connectbatch.models import (
    METHOD_LABELS,
    METHODOLOGY_LABELS,
    Connection,
    Direction,
    Method,
    Methodology,
    RejectRow,
)
from connectbatch.pipeline.validation import ValidationReport
from connectbatch.services import InvalidInputError

log = logging.getLogger("connectbatch.pages")

T = TypeVar("T")

LIST_PAGE = "app_pages/connections.py"
WIZARD_PAGE = "app_pages/connection_wizard.py"
DETAIL_PAGE = "app_pages/connection_detail.py"

# Session-state keys shared between the connection pages.
CONNECTION_ID = "connection_id"  # the connection the detail page shows
DETAIL_TAB = "detail_tab"  # its tab (Edit, History, Credentials, Delete)
FLASH = "connections_flash"  # one message for the next page shown

STATUS_COLOURS = {
    "None": "gray",
    "In Progress": "blue",
    "Completed": "green",
    "Failed": "red",
    "Active": "green",
    "Error": "red",
    "quarantined": "orange",
    "released": "green",
    "discarded": "gray",
    "Needs review": "orange",
}

DIRECTION_LABELS = {Direction.INBOUND: "Inbound", Direction.OUTBOUND: "Outbound"}
DIRECTION_CHOICES = {
    Direction.INBOUND: "Give data to us",
    Direction.OUTBOUND: "Receive data from us",
}
DEFAULT_PORTS = {Method.SFTP: 22, Method.FTP: 21, Method.EMAIL: 993}
# How a file can be read: value ("" = detect) -> label. The one copy (tests/unit/test_app_forms.py).
ENCODINGS = {
    "": "Detect: UTF-8, or UTF-16 with a byte-order mark",
    "latin-1": "Latin-1 (ISO 8859-1)",
    "cp1252": "Windows-1252",
}
DELIMITERS = {",": "Comma ,", ";": "Semicolon ;", "\t": "Tab", "|": "Pipe |"}
LOGIN_WITH = {"password": "Username and password", "key": "Username and private key"}
AFTER_SUCCESS = {
    "leave": "Leave the file where it is",
    "archive": "Move it to an archive folder",
    "delete": "Delete it",
}

# What InvalidInputError.field means on screen.
FIELD_LABELS = {
    "name": "Name",
    "direction": "Direction",
    "partner": "Partner",
    "media_ids": "MediaIds",
    "contacts": "Contacts",
    "notes": "Notes",
    "actions": "Actions to change",  # Pending actions' change form
    "amount": "New amount",
    "reason": "Reason",
    "data_type": "Data type",
    "method": "Method",
    "methodology": "Methodology",
    "pattern": "File name pattern",
    "folder": "Folder",
    "host": "Host",
    "port": "Port",
    "return_email": "Return e-mail",
    "schedule": "Schedule",
    "lock_days": "Lock period",
    "min_age_seconds": "Minimum file age",
    "timezone": "Time zone",
    "encoding": "Encoding",
    "delimiter": "Delimiter",
    "after_success": "After a successful run",
    "archive_folder": "Archive folder",
    "credential_name": "Credential name",
    "username": "Username",
    "password": "Password",
    "private_key": "Private key",
    "auth": "Log in with",
    "passphrase": "Key passphrase",
    "transfer": "Transfer settings",
    "tls": "TLS",
    "verify": "Verify certificate",
    "ca_file": "CA file",
    "passive": "Passive mode",
    "security": "Security",
    "processed_flag": "Processed flag",
    "move_to": "Move to folder",
    "recipient": "Recipient",
    "allowed_senders": "Allowed senders",
    "host_key_fingerprint": "Host key fingerprint",
    "ciphers": "Ciphers",
    "request_size": "Request size",
}


# --------------------------------------------------------------------------- labels & times


def badge(status: str | None) -> str:
    """A coloured status badge as Markdown (None / In Progress / Completed / Failed, ...)."""
    text = str(status) if status else "None"
    return f":{STATUS_COLOURS.get(text, 'gray')}-badge[{text}]"


VALIDATION_PAGE = "app_pages/validation.py"
REVIEW_RUN_PARAM = "run"  # ?run=N on the Validation page opens that run


def review_link(run_id: int | None, label: str = "Needs review") -> None:
    """A held batch reads "Needs review" and links to its run on the Validation page (the
    page tells a person without the reviewer role that it is not theirs)."""
    st.page_link(
        VALIDATION_PAGE, label=label, icon=":material/rule:",
        query_params={REVIEW_RUN_PARAM: str(run_id)} if run_id is not None else None,
        help="A batch is held for review: open it on the Validation page to release or discard it.",
    )  # fmt: skip


def when(moment: dt.datetime | None) -> str:
    if moment is None:
        return "—"
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def ago(moment: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """'3 min ago', 'yesterday'-style age of a moment, for Last Active."""
    if moment is None:
        return "—"
    now = now or dt.datetime.now(dt.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    seconds = int((now - moment).total_seconds())
    if seconds < 60:
        return "just now"
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            count = seconds // size
            if unit == "day":
                return f"{count} day{'s' if count != 1 else ''} ago"
            return f"{count} {unit} ago"
    return "just now"  # pragma: no cover - the loop always returns


def data_type_label(key: str) -> str:
    try:
        return schemas.get(key).label
    except KeyError:
        return key


def kind_line(c: Connection) -> str:
    """'Call conversions · Inbound · SFTP · Pull from third party'."""
    return " · ".join(
        (
            data_type_label(c.data_type),
            DIRECTION_LABELS[c.direction],
            METHOD_LABELS[c.method],
            METHODOLOGY_LABELS[c.methodology],
        )
    )


def is_pull(c: Connection) -> bool:
    return c.direction is Direction.INBOUND and c.methodology is Methodology.PULL


def size(n: int | None) -> str:
    if n is None:
        return "—"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def template_download(data_type: schemas.DataType, key: str) -> None:
    """The data type's template CSV (header and an example row), as the wizard and the File
    format page offer it; a download never re-runs the page."""
    st.download_button(
        "Download the template CSV", data=data_type.template_csv(), file_name=f"{data_type.key}_template.csv",
        mime="text/csv", key=key, icon=":material/download:", on_click="ignore",
    )  # fmt: skip


# --------------------------------------------------------------------------- errors


def field_label(field: str) -> str:
    """A field's name as the forms label it ("Partner", not the key "partner"): the wizard
    said "partner: a partner named 'Acme' already exists" beside "Name: is required"."""
    return FIELD_LABELS.get(field, field.replace("_", " ").capitalize())


def error_text(exc: BaseException) -> str:
    """What a person reads: the field's label in front for input errors."""
    if isinstance(exc, InvalidInputError):
        message = str(exc)
        prefix = f"{exc.field}: "
        if message.startswith(prefix):
            message = message[len(prefix) :]
        return f"{field_label(exc.field)}: {message}"
    return str(exc)


def show_error(what: str, exc: Exception) -> None:
    """An error as a message, never a traceback: ours in our words, a bug said plainly
    (its traceback goes to the log). Messages quote names, files and servers: shown as text."""
    if isinstance(exc, ConnectBatchError):
        st.error(markdown_text(error_text(exc)))
        return
    log.error("%s failed unexpectedly", what, exc_info=exc)
    detail = markdown_text(f"{type(exc).__name__}: {exc}")
    st.error(f"{what} failed unexpectedly ({detail}). Please report this.")


def safely(what: str, call: Callable[[], T]) -> tuple[bool, T | None]:
    """Run a service call; show a message instead of a traceback when it fails.
    Returns (succeeded, value)."""
    try:
        return True, call()
    except Exception as exc:
        show_error(what, exc)
    return False, None


def sync_schedule() -> None:
    """After a create, edit or delete: the scheduler's jobs follow the connections."""
    try:
        webapp.engine()[0].scheduler.sync()
    except Exception:  # the change is saved; the jobs catch up at the next start
        log.exception("scheduler sync failed")


def flash(kind: str, text: str) -> None:
    st.session_state[FLASH] = (kind, text)


def show_flash() -> None:
    found = st.session_state.pop(FLASH, None)
    if found is None:
        return
    kind, text = found
    {"success": st.success, "error": st.error, "warning": st.warning}.get(kind, st.info)(text)


def open_detail(connection_id: int, tab: str = "Edit") -> None:
    st.session_state[CONNECTION_ID] = connection_id
    st.session_state[DETAIL_TAB] = tab
    st.switch_page(DETAIL_PAGE, query_params={"connection": str(connection_id)})


# --------------------------------------------------------------------------- runs & validation


def shown_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Table rows as a person reads them: partner text (values, keys, file names, reasons) with
    control characters and bidi overrides made visible (escaping.visible), as the data pages'
    tables are (browse.visible_table), so that no cell reads as other than it is."""
    return [{k: visible(v) if isinstance(v, str) else v for k, v in row.items()} for row in rows]


def rejects_table(rejects: Sequence[RejectRow], files: dict[int, str]) -> list[dict[str, Any]]:
    return [
        {
            "File": files.get(r.file_id, str(r.file_id)),
            "Line": r.line,
            "Key": r.shown_key or "",
            "Column": r.column or "",
            "Value": r.value or "",
            "Reason": r.reason,
        }
        for r in rejects
    ]


def rejects_csv(rejects: Sequence[RejectRow], files: dict[int, str]) -> bytes:
    """The rejects as the CSV a reviewer opens in a spreadsheet (the History tab's and the
    Validation page's download): every text cell is partner text, so never a formula."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["File", "Line", "Key", "Column", "Value", "Reason"])
    for row in rejects_table(rejects, files):
        writer.writerow([v if isinstance(v, int) else csv_cell(v) for v in row.values()])
    return out.getvalue().encode("utf-8")


def verdict(report: ValidationReport) -> tuple[str, str]:
    """(kind, sentence) for a file's validation result."""
    if not report.success:
        return "error", "Failed a critical expectation: " + "; ".join(report.critical_failures)
    if report.warnings:
        return "warning", "Passed with warnings: " + "; ".join(report.warnings)
    return "success", f"All {len(report.outcomes)} expectations passed."


DELIVERY_PAGE = "app_pages/delivery.py"


def delivery_banner(connection_id: int | None = None) -> None:
    """The open delivery alerts (late, missing, volume drift, reject spike) as one warning:
    of one connection, or of all (the connections list). Messages are partner text: escaped."""
    from connectbatch.delivery.check import KIND_LABELS

    services = webapp.services()
    ok, alerts = safely("Loading delivery alerts", lambda: services.delivery_alerts(connection_id))
    if not ok or not alerts:
        return
    names = {} if connection_id is not None else {c.id: c.name for c in services.connections()}
    lines = [
        f"**{KIND_LABELS.get(a.kind, a.kind)}**"
        + (f" · {markdown_text(names.get(a.connection_id, str(a.connection_id)))}" if names else "")
        + f" · since {when(a.raised_at)}: {markdown_text(a.message)}"
        for a in alerts[:5]
    ]
    more = f"\n\n…and {len(alerts) - 5} more on the Delivery calendar" if len(alerts) > 5 else ""
    st.warning("  \n".join(lines) + more, icon=":material/schedule:")
