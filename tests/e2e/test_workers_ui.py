"""The admin Workers page (distributed mode's workers, queue depth, tasks in flight): shown to
admins only, says so in embedded mode, and explains an unreachable Redis instead of failing.
The page with live workers is covered by tests/integration/test_distributed.py's
`connectbatch workers --json`, which reads the same `distributed.workers.overview`."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch import webapp
from connectbatch.models import Role

pytestmark = pytest.mark.usefixtures("own_engine")  # each test's own settings, a fresh engine
PAGE = Path(__file__).resolve().parents[2] / "app_pages" / "workers.py"
TIMEOUT = 30


def test_embedded_mode_says_there_are_no_workers() -> None:
    at = log_in(AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)).run()
    assert not at.exception
    assert any("Embedded mode" in i.value for i in at.info)


def test_only_an_admin_sees_the_page() -> None:
    at = log_in(AppTest.from_file(str(PAGE), default_timeout=TIMEOUT), "ana", Role.ANALYST).run()
    assert not at.exception
    assert any("Only an admin" in e.value for e in at.error)


def test_an_unreachable_redis_is_one_readable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTBATCH_MODE", "distributed")
    monkeypatch.setenv("CONNECTBATCH_REDIS_URL", "redis://:s3cret@127.0.0.1:1/0")
    at = log_in(AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)).run()
    assert not at.exception
    [error] = at.error
    assert not webapp.engine()[0].scheduler._scheduler.running  # the coordinator schedules, not the app
    assert "Redis cannot be reached at 127.0.0.1:1" in error.value and "s3cret" not in error.value
