"""The one place the tests find the shared test material (third-party corpora, the seed specs).

The material is not in the repository: it lives in a `shared` folder beside the checkout
(`<repo>/../shared`), or wherever CONNECTBATCH_SHARED points. A bare clone has neither, and
its `make test` must still be green, so a test that needs the material is *skipped* with a
one-line reason. On CI (`CI=true`) the material is part of the contract and a missing file
*fails* the test instead, so a broken CI checkout cannot turn the corpus tests into skips.

    path = shared_path("seeds/002_3987687d451893b2.txt")      # in a test or fixture
    @pytest.mark.parametrize("path", shared_files("corpora/duckdb-csv", "*.csv*"))

`shared_files` runs at collection time, so it never raises: with the folder missing it yields
one placeholder parameter carrying the `shared_missing` mark, and `tests/conftest.py` skips
that test when it is set up or, on CI, fails it when it is called. Fixtures use
`shared_path_for(request, ...)`, which on CI defers the failure to the call too: a failure
raised while setting up is reported as an *error*, and on CI these must be plain failures.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NoReturn

import pytest

REPO = Path(__file__).resolve().parents[2]
ENV_VAR = "CONNECTBATCH_SHARED"
MARK = "shared_missing"
DEFERRED = pytest.StashKey[str]()


def shared_root() -> Path:
    """`$CONNECTBATCH_SHARED` when set, else the `shared` folder beside the repository."""
    override = os.environ.get(ENV_VAR)
    return Path(override).expanduser() if override else REPO.parent / "shared"


def on_ci() -> bool:
    """CI services set CI=true; there the shared material must be present."""
    return os.environ.get("CI", "").strip().lower() == "true"


def reason_for(relative: str) -> str:
    """One line: what is missing, where it was looked for, and how to provide it."""
    return (
        f"shared test material {relative!r} not found at {shared_root() / relative} "
        f"(put the shared folder beside the repository or set {ENV_VAR})"
    )


def missing(relative: str) -> NoReturn:
    """Skip the running test, or fail it on CI."""
    if on_ci():
        pytest.fail(reason_for(relative), pytrace=False)
    pytest.skip(reason_for(relative))


def shared_path(relative: str) -> Path:
    """`<shared>/<relative>` if it exists; otherwise the running test is skipped (failed on CI)."""
    path = shared_root() / relative
    if not path.exists():
        missing(relative)
    return path


def shared_path_for(request: pytest.FixtureRequest, relative: str) -> Path:
    """For a function-scoped fixture: like `shared_path`, but on CI a missing path is noted
    on the test (see `deferred`) and failed when the test is called, not while set up."""
    path = shared_root() / relative
    if not path.exists():
        if not on_ci():
            missing(relative)
        request.node.stash[DEFERRED] = relative
    return path


def deferred(item: pytest.Item) -> str | None:
    """The shared material a test lacks, noted at collection (mark) or setup (fixture)."""
    mark = item.get_closest_marker(MARK)
    return str(mark.args[0]) if mark is not None else item.stash.get(DEFERRED, None)


def shared_files(folder: str, *patterns: str, recursive: bool = False) -> list[Any]:
    """Collection-time parameters: one per file under `<shared>/<folder>` matching any of
    `patterns` (id: its path relative to the folder). With nothing found, a single placeholder
    marked `shared_missing`, so collection never errors and the test is skipped (failed on CI)."""
    base = shared_root() / folder
    found = {p for pattern in patterns for p in (base.rglob if recursive else base.glob)(pattern)}
    if found:
        return [pytest.param(p, id=str(p.relative_to(base))) for p in sorted(found)]
    pattern = patterns[0]
    relative = f"{folder}/{pattern}"
    mark = getattr(pytest.mark, MARK)(relative)
    return [pytest.param(base / pattern, id=f"{folder}-missing", marks=mark)]
