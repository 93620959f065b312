"""The app imports what its screens need in the background once the engine starts (issue 13:
the first view of a screen after the app started should not pay for pandas and altair)."""

from __future__ import annotations

import logging
import sys

import pytest

from connectbatch import webapp


def test_the_warm_up_imports_the_screens_modules_in_the_background() -> None:
    assert {"pandas", "altair"} <= set(webapp.WARM_IMPORTS)
    thread = webapp.warm_imports(("json", "connectbatch.triage"))
    thread.join(30)
    assert not thread.is_alive() and thread.daemon
    assert "connectbatch.triage" in sys.modules


def test_a_module_that_fails_to_import_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="connectbatch.webapp"):
        thread = webapp.warm_imports(("connectbatch.no_such_module", "json"))
        thread.join(30)
    assert "importing connectbatch.no_such_module failed" in caplog.text
