"""Which connection a hosted upload is for: a login may be shared by several connections of a
partner (credentials reuse), and an upload goes to the one whose folder and pattern take it
(`route`); one in a `dry-run/` folder is only checked, never loaded (`is_dry_run`). The
gateway asks; services.connections refuses two connections of a login that would both take
the same uploads."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from connectbatch.models import Connection
from connectbatch.pipeline import dryrun
from connectbatch.transfer.naming import matches

if TYPE_CHECKING:
    from connectbatch.transfer.push.gateway import Account


def is_dry_run(account: Account, path: Path) -> bool:
    """Whether an upload is a dry run: it sits in a folder named `dry-run` inside the
    account's home (the home's own, one in a shared login's connection folder, or any folder
    below one: a file meant as a trial is never loaded)."""
    try:
        relative = path.resolve().relative_to(account.home)
    except ValueError:
        return False
    return any(dry_run_folder(part) for part in relative.parts[:-1])


def dry_run_folder(name: str) -> bool:
    """Whether a folder's name makes its uploads dry runs: `dry-run` in any case. A partner
    testing a file in `DRY-RUN/` or `Dry-Run/` (as Windows shows and keeps names) had it
    loaded for real."""
    return name.casefold() == dryrun.FOLDER


def route(connections: Sequence[Connection], relative: PurePosixPath) -> list[Connection]:
    """The connections of a shared login whose folder and pattern match an upload (path
    relative to the login's home), in id order. A connection's folder is where in that home
    its files arrive ("" or "/": anywhere); its pattern matches the file name."""
    folder = relative.parent.as_posix().strip("/")
    folder = "" if folder == "." else folder
    found = []
    for connection in sorted(connections, key=lambda c: c.id):
        wanted = (connection.folder or "").strip().strip("/")
        if wanted and wanted != folder:
            continue
        if matches(relative.name, connection.pattern or "*"):
            found.append(connection)
    return found
