"""Shared fixtures for the parser tests: both parser cores, the shared corpora, and a small
builder for call-conversion CSV files so that a rule test only spells out what it is about.

The shared corpora and seeds are found (or skipped, or failed on CI) by `helpers.shared` only."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
if str(TESTS) not in sys.path:  # `import helpers` (tests/helpers/) from any test folder
    sys.path.insert(0, str(TESTS))

try:  # the tests run against the working tree, installed or not
    import connectbatch  # noqa: F401
except ImportError:  # pragma: no cover - depends on how pytest was started
    sys.path.insert(0, str(REPO))

from helpers.shared import MARK, deferred, missing, on_ci, shared_path_for  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARK}(relative): shared test material absent at collection time")


@pytest.fixture(autouse=True, scope="session")
def default_partner() -> Iterator[str]:
    """Connections need a partner (issue 11); tests written before partners existed create
    theirs without naming one, so they join this partner (session-wide: module fixtures
    create connections too). A test of the requirement itself monkeypatches
    `ServiceBase.default_partner` back to None."""
    from connectbatch.services.base import ServiceBase

    ServiceBase.default_partner = "Test partner"
    yield "Test partner"
    ServiceBase.default_partner = None


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A parameter that `helpers.shared.shared_files` could not fill: skipped before its
    fixtures run (on CI it fails when called, below)."""
    mark = item.get_closest_marker(MARK)
    if mark is not None and not on_ci():
        missing(str(mark.args[0]))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """On CI, missing shared material fails the test itself (a failure, not a setup error)."""
    relative = deferred(item)
    if relative is not None:
        missing(relative)


# One valid value per required call-conversion column, in spec order.
REQUIRED_VALUES: dict[str, str] = {
    "CampaignId": "1234",
    "MediaId": "98765",
    "EventDate": "2026-03-01T14:05:09Z",
    "ActionTrackerId": "20001",
    "CallProvider": "Invoca",
    "CallSessionId": "cs-0001",
    "CallerId": "+15551234567",
    "CalledPhoneNumber": "+18005550100",
    "CallDuration": "185",
    "TalkDuration": "160",
}

CallCsv = Callable[..., bytes]


def build_call_csv(
    *rows: Mapping[str, str],
    columns: Sequence[str] = (),
    drop: Sequence[str] = (),
    newline: str = "\n",
) -> bytes:
    """A call-conversion CSV: the 10 required columns (minus `drop`), then `columns`, then
    any other column a row names. Cells a row does not name get a valid default ("" for
    optional columns). Fields are quoted only when needed, as spreadsheets do."""
    header = [name for name in REQUIRED_VALUES if name not in drop]
    for name in [*columns, *(key for row in rows for key in row)]:
        if name not in header and name not in drop:
            header.append(name)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline)
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(name, REQUIRED_VALUES.get(name, "")) for name in header])
    return out.getvalue().encode("utf-8")


@pytest.fixture(params=["python", "cython"], ids=["python", "cython"])
def engine(request: pytest.FixtureRequest) -> str:
    """Each behaviour test runs on the reference core and on the compiled core."""
    return str(request.param)


@pytest.fixture
def corpora(request: pytest.FixtureRequest) -> Path:
    """The shared corpora folder; the test is skipped without it (failed on CI)."""
    return shared_path_for(request, "corpora")


@pytest.fixture
def call_csv() -> CallCsv:
    """`call_csv({"SaleAmount": "$12.50"}, {...})` -> bytes of a call-conversion file."""
    return build_call_csv
