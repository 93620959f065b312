"""The wizard's Create summary: every choice that shapes what the connection does, in the
words the earlier steps used, so nothing is a surprise after Create."""

from __future__ import annotations

from app_pages import _schedule, _ui
from connectbatch.models import METHOD_LABELS, METHODOLOGY_LABELS, Connection, Direction, Methodology
from connectbatch.services import CredentialInput


def review_rows(
    d: Connection, login: CredentialInput | None = None, *, partner: str = "", reused: str = ""
) -> list[dict[str, str]]:
    """The Create summary: every choice that shapes what the connection does, so nothing is
    a surprise after Create (schedule, login, return e-mail and lock period included)."""
    rows = [
        ("Name", d.name),
        ("Partner", partner or "(named after the connection)"),
        ("Data type", _ui.data_type_label(d.data_type)),
        ("Direction", _ui.DIRECTION_CHOICES[d.direction]),
        ("Method", METHOD_LABELS[d.method]),
        ("Methodology", METHODOLOGY_LABELS[d.methodology]),
        ("File name pattern", d.pattern),
    ]
    pull = d.methodology is Methodology.PULL
    if pull:
        rows += [("Host", f"{d.host or ''}{f':{d.port}' if d.port else ''}"), ("Folder", d.folder or "")]
        rows.append(("User", (login.username if login else None) or "(not given)"))
    else:
        rows.append(("User", "provisioned by ConnectBatch, shown once after Create"))
    if reused:  # the partner's existing set: nothing new is provisioned or shown
        rows[-1] = ("User", f"the partner's existing credential set {reused}, not shown again")
    if pull or d.direction is Direction.OUTBOUND:
        rows.append(("Schedule", schedule_summary(d.schedule, pull)))
    if d.direction is Direction.INBOUND:
        rows.append(("Return e-mail", d.return_email or "none: results are not e-mailed"))
        rows.append(("Lock period", f"{d.lock_days} day{'s' if d.lock_days != 1 else ''} after the event"))
    return [{"Setting": k, "Value": v} for k, v in rows]


def schedule_summary(schedule: str | None, pull: bool) -> str:
    if not schedule:
        return "none: runs only on Run now" if pull else "none"
    words = _schedule.preview(schedule)
    return f"{schedule} — {words.description}" if words else schedule
