"""The reason a run gives for a step that broke: what a person can act on first.

A load that failed for a full disk read "load (commit) failed: TransactionException:
TransactionContext Error: Failed to commit: Could not write file ".../connectbatch.duckdb.wal":
No space left on device" (crash audit): the words are there, but the cause and what to do
are buried in DuckDB's. The reason now starts with them; the error follows, for an operator.
"""

from __future__ import annotations

from connectbatch.store.db import disk_full

_CONFLICT = ("write-write conflict", "Conflict on ")


def step_failed(step: str, exc: BaseException) -> str:
    """`<step> failed: ...` for a run's and a file's reason (escaped where shown)."""
    error = f"{type(exc).__name__}: {exc}"
    if disk_full(exc):
        return (
            f"{step} failed: the disk is full; nothing of this file was loaded. Free space, then "
            f"retry the run ({error})"
        )
    if any(marker in str(exc) for marker in _CONFLICT):
        return (
            f"{step} failed: another load changed the same records at the same moment; nothing of "
            f"this file was loaded. Retry the run ({error})"
        )
    return f"{step} failed: {error}"
