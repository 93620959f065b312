"""What a pull run says about files it could not handle fully, though it did not fail: one
short note on the run (its reason), written when it ends, so a person reading the history
sees what the partner must fix without opening every file's line."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from connectbatch.models import AfterSuccess


@dataclass
class RunNotes:
    """Collected while a run goes on. `refused`: files the server would not send (one line
    each: the reason names the file and what to fix). `untidy`: files taken but not archived
    or deleted, with the first server answer (the same cause repeats for a folder)."""

    after_success: str
    refused: list[str] = field(default_factory=list)
    untidy: list[str] = field(default_factory=list)
    untidy_reason: str = ""
    # files taken out of a mail the partner forwarded (`imap.message.attachments`): where each came from
    forwarded: list[str] = field(default_factory=list)
    # files taken, then replaced on the partner's server before we tidied up: left for the next run
    changed: list[str] = field(default_factory=list)

    def not_tidied(self, name: str, reason: str) -> None:
        if name not in self.untidy:
            self.untidy.append(name)
            self.untidy_reason = self.untidy_reason or reason

    def replaced(self, name: str) -> None:
        """A file taken, then written again on the partner's server before it was deleted or
        archived: that version was not read, so it stays for the next run."""
        if name not in self.changed:
            self.changed.append(name)

    def came_from(self, name: str, forwarded: str) -> None:
        """A file taken out of a mail the partner forwarded (`forwarded` says which)."""
        if forwarded:
            self.forwarded.append(f"{name} taken from {forwarded}")

    def text(self, *before: str) -> str:
        """The run's note: `before` (e.g. the host key a first pull pinned), then ours."""
        parts = [*before, *self.refused, *self.forwarded]
        if self.changed:
            names = ", ".join(self.changed)
            parts.append(
                f"{names} changed on the partner's server after it was taken: the version taken "
                "is loaded, the new one is left there (not deleted or archived) for the next run"
            )
        if self.untidy:
            parts.append(self._untidy_text())
        return "; ".join(part for part in parts if part)

    def _untidy_text(self) -> str:
        archive = self.after_success.strip().lower() == AfterSuccess.ARCHIVE.value
        done, grant = (
            ("archived", "rename files into the archive folder") if archive else ("deleted", "delete files")
        )
        count = len(self.untidy)
        names = ", ".join(self.untidy[:3]) + (f" and {count - 3} more" if count > 3 else "")
        advice = (
            f"the login needs permission to {grant} there, or set the connection's after-success "
            "action to leave"
            if _refused(self.untidy_reason)
            else "a later run tidies them up once the server answers"
        )
        return (
            f"{names} taken but not {done} on the partner's server ({self.untidy_reason}). "
            f"{'They stay' if count > 1 else 'It stays'} there and later runs do not take "
            f"{'them' if count > 1 else 'it'} again while size and time are unchanged; {advice}"
        )


def _refused(reason: str) -> bool:
    """Whether the server refused the delete or rename (permissions, a 5xx reply), rather
    than the connection failing (our deadline cut it, it timed out or was reset): only then
    does the partner have a permission to grant."""
    text = reason.lower()
    words = ("denied", "permission", "allowed", "failure")
    return re.search(r"\b5\d\d\b", text) is not None or any(word in text for word in words)  # 5xx: FTP
