"""The app imports what its screens need in the background once the engine starts (issue 13:
the first view of a screen after the app started should not pay for pandas and altair)."""

from __future__ import annotations

import logging
import sys

import pytest

from connectbatch import webapp


def test_the_warm_up_imports_the_screens_modules_in_the_background() -> None:
    assert "pandas" in webapp.WARM_IMPORTS
    thread = webapp.warm_imports(("json", "connectbatch.triage"))
    thread.join(30)
    assert not thread.is_alive() and thread.daemon
    assert "connectbatch.triage" in sys.modules


def test_a_module_that_fails_to_import_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="connectbatch.webapp"):
        thread = webapp.warm_imports(("connectbatch.no_such_module", "json"))
        thread.join(30)
    assert "importing connectbatch.no_such_module failed" in caplog.text


def test_streamlit_does_not_collect_garbage_after_every_script_run() -> None:
    """Streamlit's gc.collect() after each run (100-250 ms over the app's objects, GIL held)
    delays the run's last messages: .streamlit/config.toml turns it off, and Streamlit reads
    that file when started in the repository's folder (make run, the browser tests)."""
    import tomllib
    from pathlib import Path

    config = Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml"
    assert tomllib.loads(config.read_text())["runner"]["postScriptGC"] is False


def test_streamlit_magic_is_off_and_no_page_relies_on_it() -> None:
    """With magic on, Streamlit rewrites each page's syntax tree before compiling it, and it
    compiles the pages again in each new session when no other session is connected: the
    app turns magic off in .streamlit/config.toml. Magic only writes bare expressions (not
    calls, not docstrings); with it off such a line would silently show nothing, so none may
    exist in the router or the pages."""
    import ast
    import tomllib
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    config = tomllib.loads((repo / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["magicEnabled"] is False
    scripts = [repo / "streamlit_app.py", *sorted((repo / "app_pages").glob("*.py"))]
    bare = []
    for path in scripts:
        tree = ast.parse(path.read_text(), str(path))
        docstrings = {
            id(node.body[0])
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and node.body
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Expr) or id(node) in docstrings:
                continue
            if not isinstance(node.value, ast.Call | ast.Await | ast.Yield | ast.YieldFrom):
                bare.append(f"{path.name}:{node.lineno}")
    assert len(scripts) > 10 and not bare, bare
