"""Recovery: runs whose process died, and running a failed run's files again.

A run left In Progress by a process that no longer exists (gone from this host, or silent
for `liveness.STALE_SECONDS` on another: store/liveness.py) is marked Failed ("interrupted")
at the next start and by a running engine's look every minute; its load transaction never
committed, so nothing of it was loaded.
`retry` then runs the failed run's files again, from their staged bytes, as a new run: only
files that were staged and did not finish (a pull run's skipped files were never fetched; the
next pull takes them). Each staged copy is checked against its sha256 first: a missing or
damaged copy fails the new run, naming the file and the path, and is never parsed.

A load that died after writing its Parquet part (store/parts.py) left a file no committed
row names: `recover_interrupted` deletes it.

`remove_stale_incoming` clears the temporary copies (`staging/.incoming-<pid>-<tag>-*`) a
killed copy left behind; copies of a live process (of another host: written lately) are left
alone.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from connectbatch.errors import ConnectBatchError
from connectbatch.models import ConnectionStatus, FileState, ReviewState, Run, RunStatus
from connectbatch.pipeline import owed, staging
from connectbatch.pipeline.clock import Clock
from connectbatch.pipeline.staging import Received
from connectbatch.store import Database, liveness
from connectbatch.store import connections as connection_store
from connectbatch.store import parts as part_store
from connectbatch.store import runs as run_store
from connectbatch.store.anchor import alive, node_tag

if TYPE_CHECKING:
    from connectbatch.pipeline.ingest import Ingestor

# A quarantined run is decided by a reviewer, and a released one has loaded: neither is retried.
RETRY_REFUSED = (ReviewState.QUARANTINED, ReviewState.RELEASED)

# A file in one of these states was under way when its process died.
UNFINISHED = (FileState.FETCHED, FileState.PARSED, FileState.VALIDATED)
# Files a retry runs again: they did not finish (rejected ones may pass after a settings fix).
RETRIED = (FileState.FAILED, FileState.REJECTED, *UNFINISHED)
INTERRUPTED = "interrupted: the process stopped during the run; nothing was loaded; retry it"


def recover_interrupted(db: Database, clock: Clock, ours: bool = True) -> list[int]:
    """Mark runs whose process died mid-run as Failed (they can then be retried): gone from
    this host, or not heard of from another for `liveness.STALE_SECONDS` (store/liveness.py).
    `ours`: at a start, runs of an older release under this process's own id are a dead
    one's too (an id used again, as PID 1 in a container); a long-running process looking
    again later (`ours=False`) leaves its own runs alone."""
    recovered = []
    with db.transaction() as con:
        for run in liveness.in_progress(con):
            if not liveness.dead(run, ours=ours):
                continue
            for f in run_store.files_of_run(con, run.run_id):
                if f.state in UNFINISHED:
                    run_store.set_file_state(con, f.id, FileState.FAILED, run_store.INTERRUPTED_FILE)
            run_store.finish(con, run.run_id, RunStatus.FAILED, clock(), INTERRUPTED)
            liveness.link_taken_again(con, run.run_id)  # an upload already taken in again
            connection_store.set_status(con, run.connection_id, ConnectionStatus.FAILED, clock())
            recovered.append(run.run_id)
        part_store.remove_orphans(con)  # a crashed load's Parquet part (its row never committed)
    return recovered


def answer_owed(ingestor: Ingestor) -> None:
    """At a start, after `recover_interrupted`: the answers a dead process owed for loads it
    committed are published (pipeline/owed.py) and their runs announced (the results e-mail,
    lost with the process); those of loads that rolled back are removed."""
    for run_id in owed.settle_left(ingestor.db, ingestor.settings.outbound):
        with ingestor.db.connect() as con:
            finished = run_store.get(con, run_id)
        ingestor._announce(finished)


class NothingToRetryError(ConnectBatchError):
    """A failed run left no staged file unfinished (e.g. a pull that could not reach the
    server): for a pull connection the retry is a new pull (services.runs)."""


def retry(ingestor: Ingestor, run_id: int) -> Run:
    """Run the files of a Failed run again, from their staged bytes, as a new run."""
    db = ingestor.db
    with db.connect() as con:
        old = run_store.get(con, run_id)
        if old.status is not RunStatus.FAILED or old.review in RETRY_REFUSED:
            raise ConnectBatchError(
                f"run {run_id} is {old.status.value.lower()}"
                + (f" ({old.review})" if old.review else "")
                + "; only failed runs can be retried (quarantined ones are released or discarded)"
            )
        later = run_store.retried_as(con, run_id)
        if later is not None:  # a second retry of it would run the same files beside the first
            raise ConnectBatchError(
                f"run {run_id} was retried already, as run {later.id} ({later.status.value.lower()})"
                + ("; retry that one instead" if later.status is RunStatus.FAILED else "")
            )
        connection = connection_store.get(con, old.connection_id)
        files = run_store.files_of_run(con, run_id)
    if not files:  # stopped before its file was recorded: nothing staged to run again
        raise NothingToRetryError(
            f"run {run_id} has no file to retry (it stopped before its file was recorded); "
            "send the file again"
        )
    again = [f for f in files if f.state in RETRIED]
    if not again and old.review is ReviewState.DISCARDED:  # a person's decision, not a failure
        note = f" ({old.review_note})" if old.review_note else ""
        raise NothingToRetryError(
            f"run {run_id} was discarded by a reviewer{note}: its rows were dropped on purpose and "
            "are not run again; the partner must send the file again (corrected)"
        )
    if not again:  # e.g. a pull run that failed before fetching anything
        raise NothingToRetryError(
            f"run {run_id} has no unfinished file to retry (its files were loaded, duplicates or "
            "never fetched); a new pull fetches what it did not take, or send the file again"
        )
    from connectbatch.pipeline import group  # group builds on the ingestor, which imports this

    run = ingestor.start_run(connection, "retry", retry_of=run_id)
    try:
        received = []
        for f in again:
            try:
                path = staging.verify(ingestor.settings.staging, f.sha256)
            except staging.StagingError as exc:
                with db.transaction() as con:
                    run_store.record_file(
                        con, connection_id=connection.id, run_id=run.id, name=f.name, source=f.source,
                        size=f.size, sha256=f.sha256, remote_path=f.remote_path, mtime=f.mtime,
                        state=FileState.FAILED, message=f"retry: {exc}",
                    )  # fmt: skip
                continue
            received.append(Received(f.name, path, f.source, f.remote_path, f.mtime))
        group.ingest_in_run(ingestor, run, connection, received)  # together, as a pull's files
    except BaseException as exc:  # never leave the new run In Progress behind a live process
        ingestor.finish_run(run, failed_reason=f"retry stopped: {type(exc).__name__}: {exc}")
        raise
    return ingestor.finish_run(run)


def remove_stale_incoming(staging_dir: Path) -> list[Path]:
    """Remove temporary copies whose copying process is gone (a killed ingest). A copy is
    `.incoming-<pid>-<node tag>-<random>`: this host's goes when its pid is gone; one of
    another host sharing staging (distributed mode), whose pid means nothing here, when it
    has not been written for `liveness.STALE_SECONDS`; an older release's (no tag), by pid."""
    removed: list[Path] = []
    if not staging_dir.is_dir():
        return removed
    for path in staging_dir.glob(f"{staging.INCOMING_PREFIX}*"):
        parts = path.name[len(staging.INCOMING_PREFIX) :].split("-")
        pid = int(parts[0]) if parts[0].isdigit() else 0
        if len(parts) == 3 and parts[1] != node_tag():
            with contextlib.suppress(FileNotFoundError):
                if time.time() - path.stat().st_mtime < liveness.STALE_SECONDS:
                    continue  # another host's copy, still being written
        elif pid and (pid == os.getpid() or alive(pid)):
            continue  # a copy under way in a live process (ours included)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed
