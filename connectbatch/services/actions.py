"""Pending actions: list, find, modify, reverse (one by one or in bulk, audited) and lock."""

from __future__ import annotations

import contextlib
import datetime as dt
from decimal import Decimal

from connectbatch.errors import ConnectBatchError
from connectbatch.explorer import (
    ActionOutcome,
    ActionPage,
)
from connectbatch.models import (
    Action,
    AuditEntry,
    Role,
)
from connectbatch.pipeline import lifecycle
from connectbatch.services.base import (
    InvalidInputError,
    NotFoundError,
    ServiceBase,
    requires,
)
from connectbatch.services.calls import partner_ids
from connectbatch.store import actions as action_store
from connectbatch.store import calls as call_store


class ActionServices(ServiceBase):
    def actions(
        self,
        name_or_id: str | int | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Action]:
        connection_id = self.connection(name_or_id).id if name_or_id is not None else None
        if status is not None:
            status = _status(status)
        with self.db.connect() as con:
            return action_store.search(
                con, connection_id=connection_id, status=status, limit=limit, offset=offset
            )

    def count_actions(self, name_or_id: str | int | None = None, status: str | None = None) -> int:
        connection_id = self.connection(name_or_id).id if name_or_id is not None else None
        with self.db.connect() as con:
            return action_store.count(
                con, connection_id=connection_id, status=_status(status) if status else None
            )

    def action(self, action_id: str | int) -> Action:
        ident = lifecycle.parse_action_id(action_id)
        with self.db.connect() as con:
            found = action_store.get(con, ident)
        if found is None:
            raise NotFoundError(f"there is no action A-{ident:06d}")
        return found

    def audit(self, action_id: str | int) -> list[AuditEntry]:
        ident = self.action(action_id).id
        with self.db.connect() as con:
            return action_store.audit(con, ident)

    @requires(Role.PARTNER_MANAGER)
    def modify_action(
        self,
        action_id: str | int,
        amount: Decimal | str | float,
        reason: str | None,
        actor: str | None = None,
    ) -> Action:
        """`actor` names who changes it in the audit trail, unless a user is logged in."""
        ident = lifecycle.parse_action_id(action_id)
        who = self.actor(actor)
        with self.db.transaction() as con:
            return lifecycle.modify(con, ident, amount, reason=reason, actor=who, now=self.clock())

    @requires(Role.PARTNER_MANAGER)
    def reverse_action(self, action_id: str | int, reason: str, actor: str | None = None) -> Action:
        ident = lifecycle.parse_action_id(action_id)
        who = self.actor(actor)
        with self.db.transaction() as con:
            return lifecycle.reverse(con, ident, reason=reason, actor=who, now=self.clock())

    @requires(Role.PARTNER_MANAGER)
    def lock_actions(
        self, now: dt.datetime | None = None, *, early: bool = False, actor: str | None = None
    ) -> int:
        """Lock what is due by `now` (default: the clock). A `now` in the future locks
        actions before their lock period ends, and a lock is final: refused unless `early`
        says the caller means it (a mistyped year must not end every pending change). Such a
        lock is audited as the person's (`actor`), "locked early", not as the lock job's."""
        clock = self.clock()
        if now is not None and now > clock and not early:
            raise lifecycle.ActionError(
                f"{now.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC is in the future: it would lock now "
                "every action due by then, before its lock period ends, and a locked action can "
                "never change again; to do that on purpose, add --early"
            )
        early_by = (self.actor(actor) or "unknown") if now is not None and now > clock else None
        with self.db.transaction() as con:
            return lifecycle.lock_due(con, now or clock, early_by)

    def find_actions(
        self,
        name_or_id: str | int | None = None,
        statuses: tuple[str, ...] = (),
        search: str | None = None,
        page: int = 1,
        page_size: int = 50,
        partners: tuple[int, ...] = (),
    ) -> ActionPage:
        """A page (from 1) of actions, newest first. `search` finds an action id (A-000123,
        123) or a part of the sender's source key (CallSessionId, OrderId); `partners`
        keeps the actions of connections that belong to one of those partner ids."""
        if page < 1:
            raise InvalidInputError("page", "pages are numbered from 1")
        if not 1 <= page_size <= 1000:
            raise InvalidInputError("page_size", "must be between 1 and 1000 rows")
        connection_id = self.connection(name_or_id).id if name_or_id is not None else None
        wanted = tuple(_status(s) for s in statuses)
        text = (search or "").strip() or None
        action_id = None
        if text is not None:
            with contextlib.suppress(lifecycle.ActionError):  # not an id: a source key only
                action_id = lifecycle.parse_action_id(text)
        now = self.clock()
        with self.db.connect() as con:
            found, total = call_store.search_actions(
                con, connection_id=connection_id, statuses=wanted, action_id=action_id, text=text,
                limit=page_size, offset=(page - 1) * page_size, partners=partner_ids(partners),
            )  # fmt: skip
        return ActionPage(found, total, now)

    @requires(Role.PARTNER_MANAGER)
    def change_actions(
        self,
        action_ids: list[int],
        *,
        reverse: bool,
        amount: Decimal | str | float | None = None,
        reason: str | None = None,
        actor: str | None = None,
    ) -> list[ActionOutcome]:
        """Modify (new amount) or reverse each action on its own: one that cannot change
        (locked, already reversed) fails with the reason and the others still change. The
        audit trail names the logged-in user, or `actor` when there is none (the CLI)."""
        actor = self.actor(actor)
        reason = (reason or "").strip() or None
        if not action_ids:
            raise InvalidInputError("actions", "select at least one action")
        if not actor:
            raise InvalidInputError("actor", "say who makes the change: it goes into the audit trail")
        if reverse and reason is None:
            raise InvalidInputError("reason", "is required to reverse an action")
        if not reverse and amount is None:
            raise InvalidInputError("amount", "is required to modify an action")
        outcomes: list[ActionOutcome] = []
        for ident in action_ids:
            try:
                if reverse:
                    changed = self.reverse_action(ident, reason or "", actor)
                    message = "reversed"
                else:
                    assert amount is not None
                    changed = self.modify_action(ident, amount, reason, actor)
                    message = f"amount is now {changed.amount}"
                outcomes.append(ActionOutcome(changed.id, True, message, changed))
            except ConnectBatchError as exc:
                outcomes.append(ActionOutcome(ident, False, str(exc)))
        return outcomes


def _status(status: str) -> str:
    upper = status.strip().upper()
    if upper not in ("PENDING", "MODIFIED", "REVERSED", "LOCKED"):
        raise InvalidInputError("status", "must be PENDING, MODIFIED, REVERSED or LOCKED")
    return upper
