"""The locator of the shared test material (`tests/helpers/shared.py`): a bare clone skips,
CI fails, CONNECTBATCH_SHARED overrides, and no test finds `../shared` on its own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import shared
from helpers.shared import deferred, shared_files, shared_path, shared_path_for, shared_root

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture
def material(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shared folder with two corpus files, pointed to by CONNECTBATCH_SHARED."""
    root = tmp_path / "shared"
    (root / "corpora" / "demo" / "sub").mkdir(parents=True)
    (root / "corpora" / "demo" / "a.csv").write_text("x\n")
    (root / "corpora" / "demo" / "sub" / "b.csv").write_text("y\n")
    monkeypatch.setenv(shared.ENV_VAR, str(root))
    monkeypatch.delenv("CI", raising=False)
    return root


def test_the_default_is_the_shared_folder_beside_the_repository(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(shared.ENV_VAR, raising=False)
    assert shared_root() == TESTS.parent.parent / "shared"


def test_the_environment_variable_points_elsewhere(material: Path) -> None:
    assert shared_root() == material
    assert shared_path("corpora/demo/a.csv") == material / "corpora" / "demo" / "a.csv"


def test_files_become_parameters_named_by_their_relative_path(material: Path) -> None:
    params = shared_files("corpora/demo", "*.csv", recursive=True)
    assert [p.id for p in params] == ["a.csv", "sub/b.csv"]
    assert all(not p.marks for p in params)


def test_missing_material_skips_with_a_one_line_reason(material: Path) -> None:
    with pytest.raises(pytest.skip.Exception) as skipped:
        shared_path("seeds/nothing.txt")
    reason = str(skipped.value)
    assert "seeds/nothing.txt" in reason and shared.ENV_VAR in reason and "\n" not in reason


@pytest.mark.parametrize("value", ["true", "True", "TRUE"])
def test_missing_material_fails_on_ci(material: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match=r"seeds/nothing\.txt"):
        shared_path("seeds/nothing.txt")


def test_collection_without_material_gives_one_marked_placeholder(material: Path) -> None:
    (param,) = shared_files("corpora/absent", "*.csv")
    assert param.id == "corpora/absent-missing"
    assert [m.name for m in param.marks] == [shared.MARK]
    assert param.marks[0].args == ("corpora/absent/*.csv",)


def test_no_test_locates_the_shared_folder_itself() -> None:
    """Drift guard: `../shared` is found in `helpers/shared.py` only."""
    pattern = re.compile(r"""/\s*["']shared["']|["']\.\./shared|["']/work/shared""")
    offenders = [
        f"{path.relative_to(TESTS)}:{n}"
        for path in sorted(TESTS.rglob("*.py"))
        if path != Path(shared.__file__).resolve() and path != Path(__file__).resolve()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == [], "use helpers.shared (shared_path / shared_files) instead"


def test_a_fixture_on_ci_defers_the_failure_to_the_call(
    material: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """Failing while set up would be reported as an error; conftest fails it when called."""
    monkeypatch.setenv("CI", "true")
    assert shared_path_for(request, "seeds/nothing.txt") == material / "seeds" / "nothing.txt"
    assert deferred(request.node) == "seeds/nothing.txt"
    del request.node.stash[shared.DEFERRED]  # this test itself is past its call
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        shared_path_for(request, "seeds/nothing.txt")
