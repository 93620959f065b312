"""Streamlit's browser files answered from memory (connectbatch/static_files.py): the same
status, headers and bytes as Streamlit's own static handler gives, for every file it serves,
and every request that is not a plain GET or HEAD of one of those files left to that handler
(issue 13: a new browser session fetched ~120 files at ~1.6 ms each)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers.asgi import asgi_request
from starlette.exceptions import HTTPException
from streamlit.web.server.starlette.starlette_static_routes import create_streamlit_static_handler

from connectbatch.static_files import StaticFromMemory, streamlit_static_dir

REPO = Path(__file__).resolve().parents[2]


class Recorder:
    """The inner app: Streamlit's handler, noting which requests reached it."""

    def __init__(self, root: Path) -> None:
        self.handler = create_streamlit_static_handler(directory=str(root), base_url=None)
        self.paths: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        try:
            await self.handler(scope, receive, send)
        except HTTPException as exc:  # the server's exception middleware answers it
            await send({"type": "http.response.start", "status": exc.status_code, "headers": []})
            await send({"type": "http.response.body", "body": b""})


def call(
    app: Any, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, list[str]], bytes]:
    """(status, headers, body) of one HTTP request to the ASGI `app`."""
    answer = asgi_request(app, path, method, headers)
    return answer["status"], answer["headers"], answer["body"]


@pytest.fixture(scope="module")
def root() -> Path:
    return streamlit_static_dir()


def test_every_file_streamlit_serves_is_answered_from_memory_as_streamlit_answers_it(root: Path) -> None:
    inner = Recorder(root)
    app = StaticFromMemory(inner, root)
    files = sorted(p for p in (root / "static").rglob("*") if p.is_file())
    assert len(files) > 100  # its JavaScript modules, styles, fonts
    for file in files:
        path = "/" + file.relative_to(root).as_posix()
        for method in ("GET", "HEAD"):
            status, headers, body = call(app, path, method)
            assert inner.paths == [], path  # answered without Streamlit's handler
            inner.paths.clear()
            assert (status, headers, body) == call(inner, path, method), (path, method)
            inner.paths.clear()
            assert body == (file.read_bytes() if method == "GET" else b"")


@pytest.mark.parametrize(
    ("path", "method", "headers"),
    [
        ("/", "GET", {}),  # index.html: Streamlit's (never cached)
        ("/index.html", "GET", {}),
        ("/favicon.png", "GET", {}),  # Streamlit's top-level files stay its own
        ("/static/js/not-a-file.js", "GET", {}),  # the SPA fallback: index.html
        ("/static/js/../../index.html", "GET", {}),  # traversal: never joined to a path here
        ("/static/js/%2e%2e/x.js", "GET", {}),
        ("//static/js/x.js", "GET", {}),  # Streamlit's 400
        ("/static/js", "GET", {}),  # a folder
        ("/static/", "GET", {}),
    ],
)
def test_other_paths_are_left_to_streamlit(
    root: Path, path: str, method: str, headers: dict[str, str]
) -> None:
    inner = Recorder(root)
    app = StaticFromMemory(inner, root)
    answered = call(app, path, method, headers)
    assert inner.paths == [path]
    assert answered == call(inner, path, method, headers)


def test_ranges_conditional_requests_and_other_methods_are_left_to_streamlit(root: Path) -> None:
    inner = Recorder(root)
    app = StaticFromMemory(inner, root)
    js = next((root / "static" / "js").glob("index.*.js"))
    path = "/" + js.relative_to(root).as_posix()
    _, headers, _ = call(app, path)
    inner.paths.clear()
    requests = [
        ("GET", {"Range": "bytes=0-9"}),
        ("GET", {"If-None-Match": headers["etag"][0]}),
        ("GET", {"if-modified-since": headers["last-modified"][0]}),
        ("POST", {}),
        ("OPTIONS", {}),
    ]
    for method, extra in requests:
        status, _, body = call(app, path, method, extra)
        assert inner.paths == [path], (method, extra)
        inner.paths.clear()
        if "Range" in extra:
            assert (status, body) == (206, js.read_bytes()[:10])
        elif method == "GET":
            assert status == 304  # the ETag and date are Streamlit's own: a cached copy stays good
        else:
            assert status == 405


def test_a_file_removed_after_the_start_is_left_to_streamlit(tmp_path: Path) -> None:
    (tmp_path / "static" / "js").mkdir(parents=True)
    (tmp_path / "index.html").write_text("<html>index</html>")
    gone = tmp_path / "static" / "js" / "gone.js"
    gone.write_text("x")
    kept = tmp_path / "static" / "js" / "kept.js"
    kept.write_text("export const a = 1;")
    inner = Recorder(tmp_path)
    app = StaticFromMemory(inner, tmp_path)
    gone.unlink()
    assert call(app, "/static/js/gone.js")[2] == b"<html>index</html>"  # Streamlit's fallback
    assert inner.paths == ["/static/js/gone.js"]
    assert call(app, "/static/js/kept.js")[2] == b"export const a = 1;"
    kept.write_text("changed")  # read once: later requests are answered from memory
    assert call(app, "/static/js/kept.js")[2] == b"export const a = 1;"
    assert inner.paths == ["/static/js/gone.js"]


def test_the_apps_server_answers_streamlits_files_from_memory_inside_the_frame_guard() -> None:
    source = (REPO / "streamlit_asgi.py").read_text()
    assert "[Middleware(webapp.FrameGuard), Middleware(static_files.StaticFromMemory)]" in source


def test_under_a_base_path_of_streamlits_own_the_files_are_answered_where_it_serves_them(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit import config

    real = config.get_option
    monkeypatch.setattr(
        config, "get_option", lambda key: "/cb/" if key == "server.baseUrlPath" else real(key)
    )
    inner = Recorder(root)
    app = StaticFromMemory(inner, root)
    js = next((root / "static" / "js").glob("index.*.js"))
    relative = js.relative_to(root).as_posix()
    assert call(app, f"/cb/{relative}")[2] == js.read_bytes()
    assert inner.paths == []
    call(app, f"/{relative}")  # not where Streamlit serves it under the base path: its answer
    assert inner.paths == [f"/{relative}"]


def test_an_html_file_under_static_is_never_cached_as_streamlit_says(tmp_path: Path) -> None:
    (tmp_path / "static" / "js").mkdir(parents=True)
    (tmp_path / "index.html").write_text("<html>index</html>")
    (tmp_path / "static" / "js" / "page.html").write_text("<p>a page</p>")
    inner = Recorder(tmp_path)
    app = StaticFromMemory(inner, tmp_path)
    ours = call(app, "/static/js/page.html")
    assert inner.paths == []
    assert ours == call(inner, "/static/js/page.html")
    assert ours[1]["cache-control"] == ["no-cache"]
