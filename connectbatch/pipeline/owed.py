"""Results owed: a loaded file's answer is written before its load commits, under a hidden
name, and given its real name once the load committed.

The answer (results file and summary) used to be written after the commit. A process killed
between the two left the file loaded, its run Completed, and the sender without an answer for
good: nothing ever wrote it (found by an audit with `kill -9`). Written first, it costs no
statement: the rows, actions and rejects it describes are all known inside the transaction.
A crash then leaves an owed answer beside the results, which the next start settles
(`settle_left`): published when the load it answers committed, removed when it rolled back.
Partners never see an owed file: names starting with a dot are hidden from them (and from
`results.list_files`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

from connectbatch.models import FileState, RunStatus
from connectbatch.store import Database

log = logging.getLogger("connectbatch.pipeline.owed")

OWED_PREFIX = ".owed-"
# results.base_name: run<run id>-file<file id>-<name>
_IDS = re.compile(r"run(\d+)-file(\d+)-")
# What a committed load leaves its file in (load.load_file: REJECTED when no row applied).
_ANSWERED_BY_LOAD = (FileState.LOADED, FileState.REJECTED)


def publish(paths: Iterable[Path]) -> None:
    """Give owed files their real names (the load they answer has committed); one already
    published (a start of another process found its load committed first) is left as it is."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, path.with_name(path.name.removeprefix(OWED_PREFIX)))


def discard(paths: Iterable[Path]) -> None:
    """Remove owed files whose load rolled back."""
    for path in paths:
        path.unlink(missing_ok=True)


def settle_left(db: Database, outbound: Path) -> list[int]:
    """At a start (after `recovery.recover_interrupted`): publish the owed answers of loads
    that committed and remove those of loads that did not; an answer whose run is still In
    Progress (another live process's, its load perhaps about to commit) is left to it. The
    ids of the runs whose answers were published (to announce)."""
    owed = {p: m for p in outbound.glob(f"*/{OWED_PREFIX}*") if (m := _IDS.match(p.name, len(OWED_PREFIX)))}
    if not owed:
        return []
    with db.connect() as con:
        rows = con.execute(
            "SELECT f.id, f.state IN (?, ?) AND EXISTS (SELECT 1 FROM validation_results v "
            "WHERE v.file_id = f.id), r.status = ? FROM files f JOIN runs r ON r.id = f.run_id "
            "WHERE list_contains(?::BIGINT[], f.id)",
            [
                *map(str, _ANSWERED_BY_LOAD),
                str(RunStatus.IN_PROGRESS),
                sorted({int(m[2]) for m in owed.values()}),
            ],
        ).fetchall()
    state = {int(r[0]): (bool(r[1]), bool(r[2])) for r in rows}
    runs: set[int] = set()
    for path, match in owed.items():
        committed, going = state.get(int(match[2]), (False, False))
        if committed:
            publish([path])
            runs.add(int(match[1]))
        elif not going:
            discard([path])
    if runs:
        log.warning("published the answers a stopped process owed", extra={"runs": sorted(runs)})
    return sorted(runs)
