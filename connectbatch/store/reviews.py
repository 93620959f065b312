"""The review queue: runs with their validation verdicts, most urgent first."""

from __future__ import annotations

import duckdb

from connectbatch.models import ReviewState, RunStatus
from connectbatch.pipeline import review
from connectbatch.store import runs as run_store
from connectbatch.store.partners import partner_in

_RUN_FIELDS = run_store.RUN_COLUMNS

# Ranks match connectbatch.pipeline.review: quarantined, critical, warnings, failed, clean, not validated.
_QUEUE = f"""
WITH v AS (
    SELECT run_id, sum(critical_failures) AS critical, sum(warnings) AS warnings, count(*) AS validated
    FROM validation_results GROUP BY run_id
), f AS (
    SELECT run_id, sum(rows_accepted) AS accepted, sum(rows_rejected) AS rejected
    FROM files GROUP BY run_id
)
SELECT {", ".join("r." + name for name in _RUN_FIELDS)},
       c.name, c.data_type, p.name AS partner,
       coalesce(v.critical, 0), coalesce(v.warnings, 0), coalesce(v.validated, 0),
       coalesce(f.accepted, 0), coalesce(f.rejected, 0),
       CASE
           WHEN r.review = '{ReviewState.QUARANTINED}' THEN {review.AWAITING_REVIEW}
           WHEN coalesce(v.critical, 0) > 0 THEN {review.CRITICAL}
           WHEN coalesce(v.warnings, 0) > 0 THEN {review.WARNINGS}
           WHEN r.status = '{RunStatus.FAILED}' THEN {review.FAILED}
           WHEN coalesce(v.validated, 0) > 0 THEN {review.CLEAN}
           ELSE {review.NOT_VALIDATED}
       END AS rank
FROM runs r
LEFT JOIN connections c ON c.id = r.connection_id
LEFT JOIN v ON v.run_id = r.id
LEFT JOIN f ON f.run_id = r.id
LEFT JOIN partners p ON p.id = c.partner_id
{{where}}
ORDER BY rank, r.started_at DESC, r.id DESC
LIMIT ?
"""


def queue(
    con: duckdb.DuckDBPyConnection, limit: int = 200, partners: tuple[int, ...] = ()
) -> list[review.RunReview]:
    """The queue, of every run or of the runs of connections belonging to `partners`."""
    out = []
    n = len(_RUN_FIELDS)
    scoped, params = partner_in("c.partner_id", partners) if partners else ("", [])
    where = f"WHERE {scoped}" if scoped else ""
    for row in con.execute(_QUEUE.replace("{where}", where), [*params, limit]).fetchall():
        run = run_store.run_from_row(row[:n])
        name, data_type, partner, critical, warnings, validated, accepted, rejected, rank = row[n:]
        out.append(
            review.RunReview(
                run=run,
                connection=name or f"(deleted connection {run.connection_id})",
                data_type=data_type,
                critical=int(critical),
                warnings=int(warnings),
                files_validated=int(validated),
                rows_accepted=int(accepted),
                rows_rejected=int(rejected),
                rank=int(rank),
                partner=partner,
            )
        )
    return out
