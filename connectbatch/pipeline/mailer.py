"""Returned results by e-mail: after an inbound run, its summary and results files go to the
credential's return address (or the connection's), as the seeds' "return email" promises.

Configured by `Settings.smtp` (CONNECTBATCH_SMTP_HOST, unset = no e-mail; _PORT, _USER,
_PASSWORD, _STARTTLS, _FROM; read in settings.py). A failure to send is logged and never fails
the run: the results are in the outbound folder either way.
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from pathlib import Path

from connectbatch.escaping import visible
from connectbatch.models import Connection, Run
from connectbatch.settings import SmtpSettings

__all__ = ["SmtpSettings", "compose", "notify", "send"]

log = logging.getLogger("connectbatch.pipeline.mailer")


def compose(
    smtp: SmtpSettings, to: str, connection: Connection, run: Run, attachments: list[Path]
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = to
    message["Subject"] = f"[ConnectBatch] {connection.name}: run {run.id} {run.status.value}"
    lines = [
        f"Connection: {connection.name}",
        f"Run: {run.id} ({run.trigger}), {run.status.value}",
        f"Files: {run.files_seen} seen, {run.files_loaded} loaded, {run.files_skipped} skipped",
        f"Rows: {run.rows_accepted} accepted, {run.rows_rejected} rejected, {run.rows_duplicate} duplicate",
        f"Actions created: {run.actions_created}",
    ]
    if run.reason:
        lines.append(f"Reason: {visible(run.reason)}")  # file names in it cannot add lines
    lines.append("")
    lines.append("The attached results file lists every input line with its status and reason.")
    message.set_content("\n".join(lines))
    for path in attachments:
        subtype = "json" if path.suffix == ".json" else "csv"
        maintype = "application" if subtype == "json" else "text"
        message.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name)
    return message


def send(smtp: SmtpSettings, message: EmailMessage) -> None:
    with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as client:
        if smtp.starttls:
            client.starttls()
        if smtp.username:
            client.login(smtp.username, smtp.password or "")
        client.send_message(message)


def results_of_run(outbound: Path, connection_id: int, run_id: int) -> list[Path]:
    folder = outbound / str(connection_id)
    if not folder.exists():
        return []
    return sorted(p for p in folder.glob(f"run{run_id}-file*") if p.is_file())


def notify(smtp: SmtpSettings, to: str | None, connection: Connection, run: Run, outbound: Path) -> bool:
    """Send the run's results; True when a message went out."""
    if not to:
        return False
    try:
        send(smtp, compose(smtp, to, connection, run, results_of_run(outbound, connection.id, run.id)))
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("could not e-mail results of run %s to %s: %s", run.id, to, exc)
        return False
    return True
