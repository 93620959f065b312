"""The rows lock-aware triage reads (see connectbatch/triage.py for the rules)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from connectbatch.models import ActionStatus, FileState, ReviewState, RunStatus
from connectbatch.store.partners import partner_in
from connectbatch.triage import HeldBatch, RatedRun, TriageItem, TriageKind, refused_for_content

MODIFICATIONS = "action_modifications"
_CHANGEABLE = f"('{ActionStatus.PENDING}', '{ActionStatus.MODIFIED}')"
# lifecycle.parse_action_id's forms (123, A-000123, a123), in SQL
_ACTION_ID = r"^\s*(?:[Aa]-?)?0*(\d{1,18})\s*$"


def held_batches(con: duckdb.DuckDBPyConnection, partners: tuple[int, ...] = ()) -> list[HeldBatch]:
    """The quarantined runs of existing connections, with their quarantined files."""
    where, params = _partner_filter("c", partners)
    rows = con.execute(
        f"""
        SELECT r.id, c.id, c.name, c.data_type, c.lock_days, c.partner_id, p.name,
               list(f.id ORDER BY f.id), sum(f.rows_accepted)
        FROM runs r
        JOIN connections c ON c.id = r.connection_id
        LEFT JOIN partners p ON p.id = c.partner_id
        JOIN files f ON f.run_id = r.id AND f.state = '{FileState.QUARANTINED}'
        WHERE r.review = '{ReviewState.QUARANTINED}' {where}
        GROUP BY ALL
        """,
        params,
    ).fetchall()
    return [
        HeldBatch(int(r[0]), int(r[1]), str(r[2]), str(r[3]), int(r[4]), _int(r[5]), r[6],
                  tuple(int(i) for i in r[7]), int(r[8] or 0))
        for r in rows
    ]  # fmt: skip


def lock_times(con: duckdb.DuckDBPyConnection, action_ids: list[int]) -> list[dt.datetime]:
    """The lock times of those of `action_ids` that can still change."""
    if not action_ids:
        return []
    rows = con.execute(
        f"SELECT lock_at FROM actions WHERE id IN (SELECT unnest(?)) AND status IN {_CHANGEABLE}",
        [action_ids],
    ).fetchall()
    return [r[0] for r in rows]


def rated_runs(
    con: duckdb.DuckDBPyConnection, data_types: list[str], per_connection: int = 200
) -> list[RatedRun]:
    """The latest `per_connection` finished runs with rows of each connection of `data_types`
    (row counts from their files, so a held batch counts its held rows)."""
    rows = con.execute(
        f"""
        WITH f AS (
            SELECT run_id, sum(rows_accepted) AS accepted, sum(rows_rejected) AS rejected
            FROM files GROUP BY run_id
        )
        SELECT r.id, r.connection_id, r.status = '{RunStatus.COMPLETED}',
               r.review IS NOT NULL,
               f.accepted + f.rejected, f.rejected
        FROM runs r
        JOIN connections c ON c.id = r.connection_id
        JOIN f ON f.run_id = r.id
        WHERE c.data_type IN (SELECT unnest(?)) AND f.accepted + f.rejected > 0
          AND r.status <> '{RunStatus.IN_PROGRESS}'
        QUALIFY row_number() OVER (PARTITION BY r.connection_id ORDER BY r.id DESC) <= ?
        """,
        [data_types, per_connection],
    ).fetchall()
    return [RatedRun(int(r[0]), int(r[1]), bool(r[2]), bool(r[3]), int(r[4]), int(r[5])) for r in rows]


def spike_items(
    con: duckdb.DuckDBPyConnection, runs: list[RatedRun], now: dt.datetime, until: dt.datetime,
    partners: tuple[int, ...] = (),
) -> list[TriageItem]:  # fmt: skip
    """The spikes among `runs` whose deadline falls in (now, until]: the earliest lock time
    of the run's actions, else its start + the connection's lock_days."""
    if not runs:
        return []
    where, params = _partner_filter("c", partners)
    rows = con.execute(
        f"""
        SELECT r.id, c.id, c.name, c.partner_id, p.name,
               coalesce((SELECT min(a.lock_at) FROM actions a WHERE a.run_id = r.id),
                        r.started_at + to_days(c.lock_days)) AS deadline
        FROM runs r
        JOIN connections c ON c.id = r.connection_id
        LEFT JOIN partners p ON p.id = c.partner_id
        WHERE r.id IN (SELECT unnest(?)) {where}
        """,
        [[r.run_id for r in runs], *params],
    ).fetchall()
    rated = {r.run_id: r for r in runs}
    out = []
    for run_id, cid, name, pid, partner, deadline in rows:
        if not now < deadline <= until:
            continue
        run = rated[int(run_id)]
        detail = f"{run.rejected:,} of {run.rows:,} rows rejected ({run.rate:.1%}), far above the usual"
        out.append(TriageItem(TriageKind.REJECT_SPIKE, deadline, int(cid), str(name), _int(pid), partner,
                              int(run_id), run.rejected, detail))  # fmt: skip
    return out


def refused_changes(
    con: duckdb.DuckDBPyConnection, now: dt.datetime, until: dt.datetime, partners: tuple[int, ...] = ()
) -> list[TriageItem]:
    """Changeable actions locking in (now, until] that a modifications file of their own
    partner named in a refused row (its ActionId, or the row's key when another column was
    refused: an Amount, a ModificationDate), and that nobody changed since (one item per
    action, the latest refusal)."""
    where, params = _partner_filter("c", partners)
    rows = con.execute(
        f"""
        SELECT a.id, c.id, c.name, c.partner_id, p.name, a.lock_at,
               arg_max(j.run_id, j.run_id), arg_max(j.reason, j.run_id), arg_max(mc.name, j.run_id)
        FROM rejects j
        JOIN runs r ON r.id = j.run_id
        JOIN connections mc ON mc.id = r.connection_id AND mc.data_type = '{MODIFICATIONS}'
        JOIN actions a ON a.id = TRY_CAST(regexp_extract(
            CASE WHEN j.column_name = 'ActionId' THEN j.value ELSE j.row_key END, '{_ACTION_ID}', 1
        ) AS BIGINT)
        JOIN connections c ON c.id = a.connection_id AND c.partner_id = mc.partner_id
        LEFT JOIN partners p ON p.id = c.partner_id
        WHERE a.status IN {_CHANGEABLE}
          AND a.lock_at > ? AND a.lock_at <= ? {where}
          AND NOT EXISTS (SELECT 1 FROM action_audit u WHERE u.action_id = a.id
                          AND u.change IN ('modify', 'reverse') AND u.changed_at >= r.started_at)
        GROUP BY ALL
        """,
        [now, until, *params],
    ).fetchall()
    return [
        TriageItem(TriageKind.REFUSED_CHANGE, lock_at, int(cid), str(name), _int(pid), partner,
                   int(run_id), 1, f"A-{int(aid):06d}: a change sent through {via} was refused: {reason}",
                   int(aid))
        for aid, cid, name, pid, partner, lock_at, run_id, reason, via in rows
    ]  # fmt: skip


def failed_connections(
    con: duckdb.DuckDBPyConnection, now: dt.datetime, until: dt.datetime, partners: tuple[int, ...] = ()
) -> list[TriageItem]:
    """Connections whose latest run failed (a discarded batch is a decision, not a failure),
    with their changeable actions locking in (now, until]: the connection's own, or every
    connection's of its partner for a modifications connection. `resend` when the run failed
    only for a file refused for its content (a retry would fail the same way)."""
    where, params = _partner_filter("fc", partners)
    rows = con.execute(
        f"""
        WITH latest AS (
            SELECT connection_id, max(id) AS run_id FROM runs GROUP BY connection_id
        ), failed AS (
            SELECT fc.id, fc.name, fc.data_type, fc.partner_id, r.id AS run_id, r.reason,
                   (SELECT list(DISTINCT fl.state ORDER BY fl.state) FROM files fl
                    WHERE fl.run_id = r.id) AS states
            FROM latest l
            JOIN runs r ON r.id = l.run_id
            JOIN connections fc ON fc.id = l.connection_id
            WHERE r.status = '{RunStatus.FAILED}' AND r.review IS DISTINCT FROM '{ReviewState.DISCARDED}'
            {where}
        )
        SELECT f.id, f.name, f.partner_id, p.name, f.run_id, f.reason, f.states, count(*), min(a.lock_at)
        FROM failed f
        JOIN connections ac ON ac.id = f.id
             OR (f.data_type = '{MODIFICATIONS}' AND ac.partner_id = f.partner_id)
        JOIN actions a ON a.connection_id = ac.id
        LEFT JOIN partners p ON p.id = f.partner_id
        WHERE a.status IN {_CHANGEABLE} AND a.lock_at > ? AND a.lock_at <= ?
        GROUP BY ALL
        """,
        [*params, now, until],
    ).fetchall()
    out = []
    for cid, name, pid, partner, run_id, reason, states, n, first in rows:
        why = f": {reason}" if reason else ""
        resend = refused_for_content(FileState(s) for s in states or [])
        if resend:
            detail = (
                f"run {run_id}: the file was refused{why}; the partner must fix it and send it again "
                "(a retry reads the same bytes: it loads them only once a field mapping, encoding or "
                f"delimiter set on the connection reads them); {n:,} changeable actions lock before a "
                "corrected file arrives"
            )
        else:
            detail = (
                f"run {run_id} failed{why}; {n:,} changeable actions lock before a new file can correct them"
            )
        out.append(TriageItem(TriageKind.FAILED_CONNECTION, first, int(cid), str(name), _int(pid), partner,
                              int(run_id), int(n), detail, resend=resend))  # fmt: skip
    return out


def _partner_filter(alias: str, partners: tuple[int, ...]) -> tuple[str, list[Any]]:
    if not partners:
        return "", []
    where, params = partner_in(f"{alias}.partner_id", partners)
    return f"AND {where}", params


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
