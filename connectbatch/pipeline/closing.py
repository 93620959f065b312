"""How a run ends: its status, reason and counts from its files' states, and the
connection's status after it, written inside the caller's transaction (the ingestor's own
after a multi-file run; a single-file run's load transaction, so it costs no commit of its
own: issue 13)."""

from __future__ import annotations

import datetime as dt

import duckdb

from connectbatch.models import FileRecord, FileState, Run, RunStatus
from connectbatch.pipeline import quarantine
from connectbatch.store import connections as connection_store
from connectbatch.store import runs as run_store

# A run with a file in one of these states ends Failed; one with a quarantined file (and no
# failed one) ends Needs review: the batch awaits a reviewer, nothing failed.
FAILS_THE_RUN = (FileState.REJECTED, FileState.FAILED)
HELD = (FileState.QUARANTINED,)
# Files a run saw but did not need to load.
NOT_LOADED_AGAIN = (FileState.DUPLICATE, FileState.SKIPPED)


def close(
    con: duckdb.DuckDBPyConnection,
    run: Run,
    now: dt.datetime,
    failed_reason: str | None = None,
    files: list[FileRecord] | None = None,
    adding: dict[str, int] | None = None,
    *,
    connection_status: bool = True,
) -> Run:
    """Close `run`: Failed when a file failed or the run itself failed (`failed_reason`),
    Needs review when a batch is held for a reviewer, else Completed; the run as closed.
    `files`: the run's files when the caller holds them all (a single-file run), else they
    are read. `adding`: counters the caller has yet to add (its file's load), added by the
    same statement. A reason recorded before (a note) stays when the run ends without one.
    `connection_status=False`: the caller sets the connection's status itself (a group of
    runs sets it once, after the last)."""
    if files is None:
        files = run_store.files_of_run(con, run.id)
    failed = [f for f in files if f.state in FAILS_THE_RUN]
    held = [f for f in files if f.state in HELD]
    if failed or failed_reason:
        status = RunStatus.FAILED
    else:
        status = RunStatus.NEEDS_REVIEW if held else RunStatus.COMPLETED
    reasons = [failed_reason] if failed_reason else []
    reasons += [f"{f.name}: {f.message}" for f in failed + held if f.message]
    finished = run_store.finish(
        con, run.id, status, now, "; ".join(reasons) or None, keep_reason=True, adding=adding,
        files_seen=len(files),
        files_loaded=sum(f.state == FileState.LOADED for f in files),
        files_skipped=sum(f.state in NOT_LOADED_AGAIN for f in files),
    )  # fmt: skip
    if finished is None:
        raise LookupError(f"no run with id {run.id}")
    if not connection_status:
        return finished
    if status is RunStatus.COMPLETED:  # the usual end: no read of the quarantined runs first
        connection_store.set_completed_unless_held(con, run.connection_id, now)
    else:
        connection_store.set_status(
            con, run.connection_id, quarantine.connection_status(con, run.connection_id, status), now
        )
    return finished
