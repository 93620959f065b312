"""The action commands of `connectbatch`: list actions, modify, reverse or audit one, and lock
the actions whose lock period has passed.

    connectbatch actions [--connection N] [--status S] [--limit K] [--offset K]
    connectbatch action modify ID --amount A [--reason R] [--actor WHO]
    connectbatch action reverse ID --reason R [--actor WHO]
    connectbatch action audit ID
    connectbatch lock [--now ISO_TIME [--early]]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import math
from typing import Any

from connectbatch import services
from connectbatch.cli import common as cc
from connectbatch.cli.common import EXIT_OK, Command
from connectbatch.models import Action, ActionStatus, AuditEntry


def _days_to_lock(action: Action, now: dt.datetime) -> int:
    if action.status is ActionStatus.LOCKED or action.lock_at <= now:
        return 0
    return math.ceil((action.lock_at - now).total_seconds() / 86400)


def _action_dict(a: Action, names: dict[int, str], now: dt.datetime) -> dict[str, Any]:
    return {
        "label": a.label,
        **dataclasses.asdict(a),
        "connection": names.get(a.connection_id),
        "days_to_lock": _days_to_lock(a, now),
    }


def _locks(a: Action, now: dt.datetime) -> str:
    """ "12 days", "5 hours", "3 minutes" (whole units left; it said "1 day" for 3 minutes)."""
    if _days_to_lock(a, now) == 0:
        return "locked" if a.status is ActionStatus.LOCKED else "due"  # due: lock job not run
    seconds = (a.lock_at - now).total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600)):
        if seconds >= size:
            return cc.count(int(seconds // size), unit)
    return cc.count(max(1, int(seconds // 60)), "minute")


def _print_action(a: Action, names: dict[int, str], now: dt.datetime) -> None:
    currency = f" {a.currency}" if a.currency else ""
    print(
        f"action {a.label}  {a.status_text}  amount {a.amount_text} (original {a.original_amount}{currency})"
    )
    cc.fields(
        [
            ("connection", cc.connection_name(names, a.connection_id)),
            ("source", f"run {a.run_id}, line {a.line}, {a.data_type} {a.source_key}"),
            ("event date", cc.when(a.event_date)),
            ("locks", f"{cc.when(a.lock_at)} ({_locks(a, now)})"),
            ("campaign", f"{a.campaign_id or '-'}, media {a.media_id or '-'}"),
            ("reason", cc.one_line(a.reason)),
        ]
    )


def _configure_actions(p: argparse.ArgumentParser) -> None:
    p.add_argument("--connection", metavar="N", help="only this connection's actions")
    p.add_argument("--status", metavar="S", type=str.upper,
                   choices=[s.value for s in ActionStatus], help="PENDING, MODIFIED, REVERSED "
                   "or LOCKED")  # fmt: skip
    p.add_argument("--limit", type=cc.positive, default=100, metavar="K",
                   help="at most K actions (default: 100)")  # fmt: skip
    p.add_argument("--offset", type=cc.non_negative, default=0, metavar="K",
                   help="skip the first K (default: 0)")  # fmt: skip
    cc.json_flag(p)


def _run_actions(args: argparse.Namespace) -> int:
    svc = cc.services()
    actions = svc.actions(args.connection, args.status, args.limit, args.offset)
    total = svc.count_actions(args.connection, args.status)
    names = cc.connection_names(svc)
    now = svc.clock()
    if args.json:
        cc.print_json(
            {
                "total": total,
                "limit": args.limit,
                "offset": args.offset,
                "actions": [_action_dict(a, names, now) for a in actions],
            }
        )
        return EXIT_OK
    if not actions:
        print("no actions" + (f" (there are {total:,}; lower --offset)" if total else ""))
        return EXIT_OK
    rows = [
        [
            a.label,
            cc.connection_name(names, a.connection_id),
            str(a.run_id),
            str(a.line),
            a.source_key,
            cc.when(a.event_date),
            a.amount_text,
            str(a.original_amount),
            a.status_text,
            _locks(a, now),
        ]
        for a in actions
    ]
    headers = ["ACTION", "CONNECTION", "RUN", "LINE", "KEY", "EVENT DATE", "AMOUNT", "ORIGINAL",
               "STATUS", "LOCKS IN"]  # fmt: skip
    cc.table(headers, rows, right=[2, 3, 6, 7])
    first = args.offset + 1
    print(f"{first:,}-{args.offset + len(actions):,} of {total:,} actions")
    return EXIT_OK


def _action_changed(action: Action, args: argparse.Namespace, svc: services.Services) -> int:
    now = svc.clock()
    names = cc.connection_names(svc)
    if args.json:
        cc.print_json(_action_dict(action, names, now))
    else:
        _print_action(action, names, now)
    return EXIT_OK


def _action_modify(args: argparse.Namespace) -> int:
    svc = cc.services()
    action = svc.modify_action(args.id, args.amount, args.reason, cc.actor(args))
    return _action_changed(action, args, svc)


def _action_reverse(args: argparse.Namespace) -> int:
    svc = cc.services()
    action = svc.reverse_action(args.id, args.reason, cc.actor(args))
    return _action_changed(action, args, svc)


def _audit_dict(e: AuditEntry) -> dict[str, Any]:
    return dataclasses.asdict(e)


def _action_audit(args: argparse.Namespace) -> int:
    svc = cc.services()
    action = svc.action(args.id)
    entries = svc.audit(action.id)
    now = svc.clock()
    names = cc.connection_names(svc)
    if args.json:
        cc.print_json({**_action_dict(action, names, now), "audit": [_audit_dict(e) for e in entries]})
        return EXIT_OK
    _print_action(action, names, now)
    if not entries:
        print("audit: no changes yet")
        return EXIT_OK
    print("audit:")
    rows = [
        [
            cc.when(e.changed_at),
            e.actor,
            e.change,
            f"{e.old_status or '-'} -> {e.new_status}",
            f"{'-' if e.old_amount is None else e.old_amount} -> "
            f"{'-' if e.new_amount is None else e.new_amount}",
            cc.one_line(e.reason),
        ]
        for e in entries
    ]
    cc.table(["WHEN", "ACTOR", "CHANGE", "STATUS", "AMOUNT", "REASON"], rows, indent="  ")
    return EXIT_OK


def _configure_action(p: argparse.ArgumentParser) -> None:
    sub = cc.subcommands(p)
    actor_help = "who makes the change (default: your user name)"
    modify = cc.leaf(sub, "modify", "set a pending action's amount", _action_modify)
    modify.add_argument("id", metavar="ID", help="action id: 123 or A-000123")
    modify.add_argument("--amount", required=True, metavar="A", help="new amount, e.g. 12.50")
    modify.add_argument("--reason", metavar="R", help="why (kept in the audit)")
    modify.add_argument("--actor", metavar="WHO", help=actor_help)
    cc.json_flag(modify)
    reverse = cc.leaf(sub, "reverse", "reverse an action (amount 0)", _action_reverse)
    reverse.add_argument("id", metavar="ID", help="action id: 123 or A-000123")
    reverse.add_argument("--reason", required=True, metavar="R", help="why (kept in the audit)")
    reverse.add_argument("--actor", metavar="WHO", help=actor_help)
    cc.json_flag(reverse)
    audit = cc.leaf(sub, "audit", "show an action and every change to it", _action_audit)
    audit.add_argument("id", metavar="ID", help="action id: 123 or A-000123")
    cc.json_flag(audit)


def _configure_lock(p: argparse.ArgumentParser) -> None:
    p.add_argument("--now", type=cc.iso_time, metavar="ISO_TIME",
                   help="lock what is due at this time, e.g. 2026-04-01T00:00:00Z; a time without "
                   "offset is UTC (default: now); a future time needs --early")  # fmt: skip
    p.add_argument("--early", action="store_true",
                   help="allow a future --now: lock actions before their lock period ends "
                   "(final: they can never change again)")  # fmt: skip
    p.add_argument("--actor", metavar="WHO", help="who locks early, in the audit (default: your user name)")
    cc.json_flag(p)


def _run_lock(args: argparse.Namespace) -> int:
    svc = cc.services()
    now: dt.datetime = args.now or svc.clock()
    locked = svc.lock_actions(now, early=args.early, actor=cc.actor(args))
    if args.json:
        cc.print_json({"locked": locked, "now": now})
    else:
        print(f"locked {cc.count(locked, 'action')} due by {cc.when(now)}")
    return EXIT_OK


COMMANDS: dict[str, Command] = {
    "actions": Command("list pending and past actions", _configure_actions, _run_actions),
    "action": Command("modify, reverse or audit one action", _configure_action, cc.dispatch),
    "lock": Command("lock the actions whose lock period has passed", _configure_lock, _run_lock),
}  # fmt: skip
