"""Status sync-back (pipeline/syncback.py): report every later change of an inbound
connection's records back to its partner, per channel, exactly once."""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from connectbatch import schemas
from connectbatch.models import Connection, Direction, FileState, Role, SyncBack
from connectbatch.pipeline import results
from connectbatch.pipeline import syncback as sb
from connectbatch.pipeline.mailer import one_address
from connectbatch.services.base import InvalidInputError, ServiceBase, requires
from connectbatch.settings import SmtpSettings
from connectbatch.store import connections as connection_store
from connectbatch.store import syncback as store
from connectbatch.store.db import private_dir

log = logging.getLogger("connectbatch.services.syncback")


@dataclass
class SyncBackResult:
    """What one sync-back of a connection did: the status files sent per channel, and why a
    channel that is on sent nothing (no SMTP server, no return address)."""

    connection_id: int
    sent: list[SyncBack] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    paths: list[Path] = field(default_factory=list)  # channel files: every copy written


@dataclass
class _Group:
    rows: list[sb.StatusRow] = field(default_factory=list)
    files: list[int] = field(default_factory=list)
    changes: list[int] = field(default_factory=list)
    removals: list[int] = field(default_factory=list)  # snapshot files whose removals it reports


class SyncBackServices(ServiceBase):
    @requires(Role.ANALYST)
    def sync_back_now(self, name_or_id: str | int, trigger: str = "manual") -> SyncBackResult:
        """Report what changed since the last sync-back, on each channel the connection has on
        (an inbound connection with sync-back off is refused: nothing would be sent)."""
        connection = self.connection(name_or_id)
        if connection.direction is not Direction.INBOUND:
            raise InvalidInputError(
                "connection", f"{connection.name!r} is outbound; status sync-back is for inbound connections"
            )
        if not connection.sync_back:
            raise InvalidInputError(
                "sync_back",
                f"{connection.name!r} has status sync-back off (connection edit N --sync-back files,email)",
            )
        outcome = SyncBackResult(connection.id)
        for channel in connection.sync_back:
            self._sync_channel(connection, channel, trigger, outcome)
        return outcome

    @requires(Role.ANALYST)  # the engine runs it as the operator
    def sync_back_all(self, trigger: str = "schedule") -> list[SyncBackResult]:
        """The engine's job: every inbound connection with sync-back on; one connection's
        failure (SMTP down) is logged and does not stop the others."""
        done: list[SyncBackResult] = []
        with self.db.connect() as con:
            every = connection_store.list_all(con)
        for c in every:
            if c.direction is not Direction.INBOUND or not c.sync_back:
                continue
            try:
                done.append(self.sync_back_now(c.id, trigger))
            except Exception:
                log.exception("sync-back failed", extra={"connection_id": c.id})
        return done

    def sync_backs(self, name_or_id: str | int, limit: int = 100) -> list[SyncBack]:
        """The sync-back ledger of a connection, newest first."""
        connection = self.connection(name_or_id)
        with self.db.connect() as con:
            return store.of_connection(con, connection.id, limit)

    # ------------------------------------------------------------------ one channel

    def _sync_channel(
        self, connection: Connection, channel: str, trigger: str, outcome: SyncBackResult
    ) -> None:
        smtp = self.settings.smtp
        recipient: str | None = None
        if channel == "email":
            if smtp is None:
                outcome.skipped[channel] = "no SMTP server is configured (CONNECTBATCH_SMTP_HOST)"
                return
            recipient = self._return_address(connection)
            if recipient is None:
                outcome.skipped[channel] = "the connection has no return e-mail address"
                return
            if one_address(recipient) is None:  # its rows wait, unreported, for a fix
                outcome.skipped[channel] = f"the return address {recipient!r} is not one e-mail address"
                return
        with _LOCKS.setdefault(connection.id, threading.Lock()):  # one sync of it at a time here
            self._sync_locked(connection, channel, trigger, outcome, smtp, recipient)

    def _sync_locked(
        self, connection: Connection, channel: str, trigger: str, outcome: SyncBackResult,
        smtp: SmtpSettings | None, recipient: str | None,
    ) -> None:  # fmt: skip
        written: list[Path] = []
        try:
            with self.db.transaction() as con:
                folders = self._folders(con, connection) if channel == "files" else []
                for folder in folders:  # what a killed sync left: published or removed
                    leftovers = [p.name[len(sb.STAGED_PREFIX) :] for p in _staged(folder, connection.id)]
                    recorded = store.recorded_names(con, connection.id, channel, leftovers)
                    outcome.paths += sb.settle(folder, connection.id, recorded)
                groups = self._pending(con, connection, channel)
                now = self.clock()
                mapping = sb.words(connection)
                for part, (names, group) in enumerate(groups.items()):
                    sync_id = store.next_id(con)
                    name = sb.file_name(connection.id, sync_id, now, part, len(groups))
                    data = sb.render(connection, group.rows, names, mapping)
                    if channel == "files":
                        for folder in folders:
                            path = private_dir(folder) / name
                            written.append(path)
                            sb.stage(path, data)
                    else:
                        assert smtp is not None and recipient is not None
                        counts = {s: sum(r.change == s for r in group.rows) for s in sb.STATUSES}
                        message = sb.compose(smtp.sender, recipient, connection, name, data, counts)
                        self.outbox.queue(con, message, kind="status", connection_id=connection.id)
                    ledger = SyncBack(
                        sync_id, connection.id, channel, trigger, name, len(group.rows), recipient, now
                    )
                    outcome.sent.append(store.record(con, ledger, group.files, group.changes, group.removals))
        except BaseException:
            for path in written:  # staged, not recorded: it must never be collected
                with contextlib.suppress(OSError):
                    path.with_name(sb.STAGED_PREFIX + path.name).unlink()
            raise
        for path in written:  # recorded: now the partner may collect it (a failure here is
            sb.publish(path)  # published by the next sync's settle)
        outcome.paths += written
        if channel == "email" and outcome.sent:
            self.outbox.kick()  # queued with the ledger: sent now, or retried by the outbox

    def _pending(
        self, con: duckdb.DuckDBPyConnection, connection: Connection, channel: str
    ) -> dict[tuple[str, ...], _Group]:
        """Unreported rows grouped by how the partner named the key columns (one status
        file each), load outcomes first, then changes in audit order."""
        outcomes = store.pending_files(con, connection.id, channel)
        removals = store.pending_removals(con, connection.id, channel, connection.data_type)
        changes = store.pending_changes(con, connection.id, channel, connection.data_type)
        file_ids = sorted(
            {o.file_id for o in outcomes} | {r.file_id for r in removals} | {c.file_id for c in changes}
        )
        headers = store.headers(con, file_ids)
        names_of = {f: sb.header_names(connection, headers.get(f)) for f in file_ids}
        groups: dict[tuple[str, ...], _Group] = {}
        keys = schemas.get(connection.data_type).key_columns
        key_column = keys[0] if keys else None
        for o in outcomes:
            names = names_of[o.file_id]
            key_names = results.partner_names(
                headers.get(o.file_id), connection.column_map, _columns(connection)
            )
            rows = (  # a discarded batch's rows were never stored (sb.file_rows)
                store.rows_of_file(con, connection.data_type, o.file_id)
                if o.state != FileState.DISCARDED
                else []
            )
            group = groups.setdefault(names, _Group())
            group.rows += sb.file_rows(o, rows, key_names, key_column)
            group.files.append(o.file_id)
        claimed: set[int] = set()  # a snapshot's removals may span namings: marked by one
        for r in removals:
            group = groups.setdefault(names_of[r.file_id], _Group())
            group.rows.append(sb.removal_row(r))
            if r.by_file not in claimed:
                claimed.add(r.by_file)
                group.removals.append(r.by_file)
        for c in changes:
            group = groups.setdefault(names_of[c.file_id], _Group())
            group.rows.append(sb.change_row(c))
            group.changes.append(c.audit_id)
        return {k: g for k, g in groups.items() if g.rows or g.files or g.changes or g.removals}

    def _folders(self, con: duckdb.DuckDBPyConnection, connection: Connection) -> list[Path]:
        """Where a status file goes: the connection's results folder (the app's download, the
        e-mail's source) and the folder of each of its partner's "Pull from us" connections
        that exports it (as export_now chooses sources), where their login collects it."""
        folders = [results.folder(self.settings.outbound, connection.id)]
        if connection.partner_id is not None:
            for c in connection_store.of_partner(con, connection.partner_id):
                if c.direction is not Direction.OUTBOUND:
                    continue
                named = connection.id in c.export_sources
                if named or (not c.export_sources and c.data_type == connection.data_type):
                    folders.append(self.settings.outbound / str(c.id))
        return folders


def _staged(folder: Path, connection_id: int) -> list[Path]:
    return sorted(folder.glob(f"{sb.STAGED_PREFIX}status-{connection_id}-*.csv")) if folder.exists() else []


# One sync-back per connection at a time in this process (the engine's schedule and a person's
# "Sync back now"): another's settle must not remove a file staged and about to commit.
_LOCKS: dict[int, threading.Lock] = {}


def _columns(connection: Connection) -> list[str]:
    return list(schemas.get(connection.data_type).column_names)
