"""The app's server (streamlit_asgi.py) answers its root and each screen's address with
Streamlit's index.html naming the backend, so that a new browser session opened on a screen's
address connects at once instead of after a 404 and a 100 ms retry, and naming the modules of
the login form's field and of the Log out button, so that the browser fetches them while it
starts Streamlit rather than after the form's run (issue 13). The browser side is checked in
tests/e2e/test_browser.py."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import streamlit as st
from starlette.requests import Request
from starlette.routing import Match, Route

from app_pages._menu import LOGIN_PATH, PAGES, url_paths
from connectbatch import webapp

REPO = Path(__file__).resolve().parents[2]


def test_the_root_every_screen_and_the_login_form_have_a_route_and_nothing_else() -> None:
    routes = webapp.page_routes(url_paths())
    paths = {r.path for r in routes if isinstance(r, Route)}
    expected = {f"/{spec.url_path}" for specs in PAGES.values() for spec in specs} | {f"/{LOGIN_PATH}", "/"}
    assert paths == expected and len(routes) == len(expected)
    # Streamlit's own files and its API stay Streamlit's.
    for path in ("/favicon.png", "/_stcore/health", "/validation/_stcore/health", "/static/js/x.js"):
        scope = {"type": "http", "path": path, "method": "GET"}
        assert all(r.matches(scope)[0] is Match.NONE for r in routes), path


def test_a_screens_address_gets_streamlits_page_with_the_backend_named_first() -> None:
    route = next(r for r in webapp.page_routes(["validation"]) if isinstance(r, Route))
    scope = {"type": "http", "method": "GET", "path": "/validation", "headers": [], "query_string": b""}
    # On a thread of its own: an earlier test (the browser's) may leave a loop running here.
    with ThreadPoolExecutor(1) as pool:
        response = pool.submit(asyncio.run, route.endpoint(Request(scope))).result()
    html = bytes(response.body).decode()
    streamlit_index = (Path(st.__file__).parent / "static" / "index.html").read_text()
    assert html == webapp.index_html()
    preloads = re.findall(r'<link rel="modulepreload" crossorigin href="\./static/js/[^"]+">\n', html)
    without = html.replace(webapp.BACKEND_SCRIPT, "", 1)
    for link in preloads:
        without = without.replace(link, "", 1) if link not in streamlit_index else without
    assert without == streamlit_index
    assert html.index(webapp.BACKEND_SCRIPT) < html.index('<script type="module"')
    assert response.headers["cache-control"] == "no-cache"


def test_index_html_names_every_module_of_the_login_field_and_the_log_out_button() -> None:
    """What Streamlit's browser code would fetch for the login form's text field and the
    sidebar's button, one level of imports after another, is named in index.html (each once,
    each a file of this Streamlit), so that the browser fetches it all at once at the start."""
    js = Path(st.__file__).parent / "static" / "static" / "js"
    html = webapp.index_html()
    named = re.findall(r'<link rel="modulepreload" crossorigin href="\./static/js/([^"]+)">', html)
    assert len(named) == len(set(named)) and all((js / name).is_file() for name in named)
    for element in ("TextInput", "Button"):
        own = [p.name for p in js.glob(f"{element}.*.js") if p.name.count(".") == 2]
        assert len(own) == 1 and own[0] in named, element
    imported = {
        i
        for name in named
        for i in re.findall(r'(?:from|import)\s*"\./([^"]+\.js)"', (js / name).read_text())
    }
    assert imported <= set(re.findall(r"\./static/js/([^\"]+\.js)", html))  # preloaded or Streamlit's own


def test_element_modules_follow_static_imports_not_dynamic_ones(tmp_path: Path) -> None:
    (tmp_path / "Field.abc.js").write_text(
        'import{a}from"./a.x1.js";import"./b.x2.js";const c=()=>import("./lazy.x3.js")'
    )
    (tmp_path / "a.x1.js").write_text('import{k}from"./known.x4.js";import{b}from"./b.x2.js"')
    (tmp_path / "b.x2.js").write_text("export const b=1")
    (tmp_path / "lazy.x3.js").write_text("export const l=1")
    (tmp_path / "known.x4.js").write_text("export const k=1")
    (tmp_path / "FieldGroup.abc.js").write_text("export const g=1")  # another element's module
    assert webapp.element_modules(tmp_path, ("Field", "Missing"), {"known.x4.js"}) == [
        "Field.abc.js",
        "a.x1.js",
        "b.x2.js",
    ]


def test_under_a_base_path_of_streamlits_own_the_addresses_stay_streamlits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = st.config.get_option
    monkeypatch.setattr(
        st.config, "get_option", lambda key: "cb" if key == "server.baseUrlPath" else real(key)
    )
    assert webapp.page_routes(url_paths()) == []


def test_make_run_and_the_browser_tests_start_the_server_on_the_router() -> None:
    source = (REPO / "streamlit_asgi.py").read_text()
    assert '"streamlit_app.py",' in source
    assert "webapp.page_routes(url_paths()) + webapp.session_routes(webapp.operator_services)" in source
    assert "streamlit run streamlit_asgi.py" in (REPO / "Makefile").read_text()
    assert '"run", "streamlit_asgi.py"' in (REPO / "tests" / "e2e" / "browser.py").read_text()
