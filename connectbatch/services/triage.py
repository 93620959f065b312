"""Lock-aware triage for reviewers: what locks in the next N days and still needs a person
(connectbatch/triage.py has the rules), read with the services' clock so tests set "now"."""

from __future__ import annotations

import datetime as dt

import duckdb

from connectbatch import schemas, triage
from connectbatch.models import Role
from connectbatch.pipeline import late, lifecycle, quarantine
from connectbatch.services.base import InvalidInputError, ServiceBase, requires
from connectbatch.services.calls import partner_ids
from connectbatch.settings import Settings
from connectbatch.store import triage as triage_store
from connectbatch.triage import HeldBatch, Triage, TriageItem, TriageKind


class TriageServices(ServiceBase):
    @requires(Role.REVIEWER)
    def triage(self, days: int = triage.DEFAULT_DAYS, partners: tuple[int, ...] = ()) -> Triage:
        """Quarantined batches, reject spikes, refused change requests and the actions of
        connections whose last file failed, that lock within `days` days from now, grouped by
        partner (only `partners`' when given) and ordered by time left."""
        if not 1 <= days <= triage.MAX_DAYS:
            raise InvalidInputError("days", f"must be a whole number from 1 to {triage.MAX_DAYS}")
        now = self.clock()
        until = now + dt.timedelta(days=days)
        wanted = partner_ids(partners)
        action_types = [t.key for t in schemas.REGISTRY.values() if t.action_columns]
        with self.db.connect() as con:
            items = [i for i in held_items(self.settings, con, wanted) if i.deadline <= until]
            spikes = triage.unresolved_spikes(triage_store.rated_runs(con, action_types))
            items += triage_store.spike_items(con, spikes, now, until, wanted)
            items += triage_store.refused_changes(con, now, until, wanted)
            items += triage_store.failed_connections(con, now, until, wanted)
        return triage.group(items, now, days)


def lock_deadlines(settings: Settings, con: duckdb.DuckDBPyConnection) -> dict[int, dt.datetime]:
    """The lock deadline of each quarantined run that has one (the review queue's column)."""
    return {i.run_id: i.deadline for i in held_items(settings, con, ()) if i.run_id is not None}


def held_items(
    settings: Settings, con: duckdb.DuckDBPyConnection, partners: tuple[int, ...]
) -> list[TriageItem]:
    """Every quarantined batch whose rows lock, with its deadline (past ones included)."""
    out = []
    for batch in triage_store.held_batches(con, partners):
        deadline = _held_deadline(settings, con, batch)
        if deadline is None:  # a data type without actions: nothing of it locks
            continue
        detail = f"{batch.rows:,} rows held for review"
        out.append(TriageItem(TriageKind.QUARANTINED, deadline, batch.connection_id, batch.connection,
                              batch.partner_id, batch.partner, batch.run_id, batch.rows, detail))  # fmt: skip
    return out


def _held_deadline(
    settings: Settings, con: duckdb.DuckDBPyConnection, batch: HeldBatch
) -> dt.datetime | None:
    """The earliest lock time of the held rows' events, or of the actions a held
    modifications batch names; None when nothing of it locks."""
    paths = [quarantine.held_path(settings.runs_dir, batch.run_id, f) for f in batch.file_ids]
    if batch.data_type == triage_store.MODIFICATIONS:
        ids = []
        for text in triage.held_values(paths, "ActionId"):
            try:
                ids.append(lifecycle.parse_action_id(text))
            except lifecycle.ActionError:
                continue  # not an action id: the release will reject the row
        return min(triage_store.lock_times(con, ids), default=None)
    column = late.event_column(batch.data_type)
    if column is None:
        return None
    first = triage.held_first_event(paths, column)
    return None if first is None else first + dt.timedelta(days=batch.lock_days)
