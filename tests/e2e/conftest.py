"""The app under test works on its own data directory, without hosted servers on fixed ports.

The browser harness's fixtures (tests/e2e/browser.py) are declared here, once for every
browser test module: a session fixture re-exported by two modules would be two fixtures, and
a second Playwright started while the first runs fails ("Sync API inside the asyncio loop").
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import app_page, chromium_browser, streamlit_server

from connectbatch import webapp
from connectbatch.engine import Engine


@pytest.fixture(autouse=True)
def app_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTBATCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CONNECTBATCH_SFTP_PORT", "0")
    monkeypatch.setenv("CONNECTBATCH_FTP_PORT", "0")


@pytest.fixture
def own_engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh engine per test on the test's data dir, stopped afterwards (AppTest modules
    that start the app's engine use it: `pytestmark = pytest.mark.usefixtures("own_engine")`)."""
    started: list[Engine] = []
    original = Engine.start

    def start(self: Engine, servers: bool = True) -> None:
        started.append(self)
        original(self, servers)

    monkeypatch.setattr(Engine, "start", start)
    webapp.engine.clear()
    yield
    for engine in started:
        engine.stop()
    webapp.engine.clear()


__all__ = ["app_environment", "app_page", "chromium_browser", "streamlit_server"]
