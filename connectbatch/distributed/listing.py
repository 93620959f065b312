"""What the coordinator says of the files a pull task listed but did not fetch (a mixin of
`Coordinator`): why each waits, whether that was said before (one ledger line per decision,
as `transfer.pull.collect` keeps in embedded mode), and which refused mails the next pull
marks processed once their line is in the ledger.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from connectbatch.models import Connection, FileRecord
from connectbatch.services import Services
from connectbatch.store import runs as run_store
from connectbatch.transfer import base
from connectbatch.transfer.pull import collect


class Decisions:
    """The coordinator's decisions on unfetched files; `Coordinator` holds `services`."""

    services: Services

    def _new_decision(self, connection: Connection, remote: base.RemoteFile, entry: dict[str, Any]) -> bool:
        """Whether an unfetched file adds a line (a reason not recorded before)."""
        if entry["extra"].get("skip") and not entry.get("settles"):
            return True  # changing while fetched: said on every run, as embedded mode does
        reason = self._wait_reason(connection, remote, entry)
        return reason is not None and self._recorded(connection, remote, reason) is None

    def _wait_reason(
        self, connection: Connection, remote: base.RemoteFile, entry: dict[str, Any]
    ) -> str | None:
        """Why an unfetched file is not taken (None: an earlier run settled it)."""
        told: str | None = entry["extra"].get("skip") or entry.get("refused") or entry.get("too_large")
        if told:
            return told
        reason, settled = collect._skip_reason(self.services.db, self.services.ingestor, connection, remote)
        return None if settled else reason

    def _recorded(self, connection: Connection, remote: base.RemoteFile, reason: str) -> FileRecord | None:
        """The ledger line that said this of this file (path, size, time) before."""
        with self.services.db.connect() as con:
            return run_store.skipped_before(
                con, connection.id, remote.path, remote.size or 0, remote.mtime, reason,
                by_day=remote.time_by_day,
            )  # fmt: skip

    def _to_mark(
        self, connection: Connection, files: list[tuple[dict[str, Any], base.RemoteFile]]
    ) -> set[str]:
        """The mails refused as they are (`settles`: sender not allowed, over the limit)
        whose line the ledger holds now: the next pull marks them processed. One not
        recorded is never marked, so no mail goes unseen."""
        marks = set()
        for entry, remote in files:
            if entry.get("settles") and not entry["sha256"]:
                reason = self._wait_reason(connection, remote, entry)
                if reason is not None and self._recorded(connection, remote, reason) is not None:
                    marks.add(remote.path)
        return marks


def _remote(entry: dict[str, Any]) -> tuple[dict[str, Any], base.RemoteFile]:
    mtime = dt.datetime.fromisoformat(entry["mtime"]) if entry["mtime"] else None
    remote = base.RemoteFile(
        entry["name"], entry["remote_path"], entry["size"], mtime, "", entry["extra"] or {}
    )
    return entry, remote
