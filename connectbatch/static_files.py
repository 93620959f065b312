"""Streamlit's own browser files (its JavaScript modules, styles and fonts under /static/),
answered from memory by the app's server (streamlit_asgi.py).

Why: a new browser session fetches ~120 of these files before it can draw the login form, and
~50 more for a screen's tables and pickers. Streamlit's server answers each through Starlette's
StaticFiles: a stat and an open in a worker thread, the file streamed in chunks, each hop back
through the event loop, ~1.6 ms a file on the 2-core machine. The event loop answers them one
after another, so a new session waited ~0.2 s for them (issue 13: page ready in a new session).
Here each file is read once, on its first request, and every later request is one `send` of
bytes already in memory.

Only the files found under Streamlit's static folder when the server starts are answered, by
their exact relative path: nothing a request names is ever joined to a path on disk, so no
traversal is possible. Anything else goes on to Streamlit's handler unchanged, so its answers
stay its own: index.html and the screens' addresses, a path that is not a file there, a Range
or conditional request (If-None-Match, If-Modified-Since: a browser that cached a file asks
again rarely, since the files are "immutable"). Under a base path of Streamlit's own
(server.baseUrlPath = "cb") the files are answered at /cb/static/, where Streamlit serves them.
The answers carry the headers Streamlit's handler gives, its ETag included, so a file cached
from either answers a later conditional request the same.
"""

from __future__ import annotations

import email.utils
import hashlib
import mimetypes
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATIC = "static/"  # where Streamlit serves them: under its base path, if it has one
IMMUTABLE = b"public, immutable, max-age=31536000"  # as Streamlit's handler says for hashed files
# Streamlit's rule: HTML is never cached (its other no-cache file, manifest.json, is not under static/).
NO_CACHE_SUFFIX = ".html"
LARGEST = 16 * 1024 * 1024  # a bigger file (none today) stays streamed from disk by Streamlit
# A request with one of these headers is left to Streamlit's handler (see the docstring).
HANDED_ON = (b"range", b"if-none-match", b"if-modified-since")


@dataclass(frozen=True)
class _Answer:
    """One file's body and the headers of a 200 answer for it."""

    body: bytes
    headers: list[tuple[bytes, bytes]]


def streamlit_static_dir() -> Path:
    """The folder Streamlit serves its browser files from (its package's static/)."""
    from streamlit import file_util

    return Path(file_util.get_static_dir())


def _known_files(root: Path) -> dict[str, Path]:
    """Relative URL path ("static/js/index.Dorm.js") -> file, for every regular file under
    `root`, as the server starts. Symbolic links are followed as Streamlit's handler does."""
    found: dict[str, Path] = {}
    for folder, _dirs, names in os.walk(root, followlinks=True):
        for name in names:
            path = Path(folder, name)
            found[path.relative_to(root).as_posix()] = path
    return found


def _content_type(name: str) -> bytes:
    """The Content-Type Starlette's FileResponse gives the file (text with its charset)."""
    kind = mimetypes.guess_type(name)[0] or "text/plain"
    return (kind + "; charset=utf-8" if kind.startswith("text/") else kind).encode("latin-1")


def _answer(relative: str, path: Path) -> _Answer | None:
    """The file's answer, or None when it cannot be read or is too big to keep."""
    try:
        stat = path.stat()
        if stat.st_size > LARGEST:
            return None
        body = path.read_bytes()
    except OSError:
        return None
    # Starlette's FileResponse's ETag: the file's time and size, not its bytes.
    stamp = f"{stat.st_mtime}-{stat.st_size}".encode()
    etag = b'"' + hashlib.md5(stamp, usedforsecurity=False).hexdigest().encode() + b'"'
    cache = b"no-cache" if relative.endswith(NO_CACHE_SUFFIX) else IMMUTABLE
    headers = [
        (b"content-type", _content_type(relative)),
        (b"accept-ranges", b"bytes"),
        (b"content-length", str(len(body)).encode()),
        (b"last-modified", email.utils.formatdate(stat.st_mtime, usegmt=True).encode()),
        (b"etag", etag),
        (b"cache-control", cache),
    ]
    return _Answer(body, headers)


class StaticFromMemory:
    """ASGI middleware: GET and HEAD of a file Streamlit serves under /static/ answered from
    memory (see the module's docstring); every other request goes on to `app`."""

    def __init__(self, app: Callable[..., Any], root: Path | None = None) -> None:
        from streamlit import config

        self.app = app
        self._files = _known_files(root or streamlit_static_dir())
        self._answers: dict[str, _Answer | None] = {}
        base = str(config.get_option("server.baseUrlPath") or "").strip("/")
        self._prefix = f"/{base}/" if base else "/"

    def _lookup(self, scope: dict[str, Any]) -> _Answer | None:
        if scope.get("method") not in ("GET", "HEAD") or scope.get("root_path"):
            return None
        if any(name.lower() in HANDED_ON for name, _ in scope.get("headers", [])):
            return None
        path = scope.get("path", "")
        if not path.startswith(self._prefix + STATIC):
            return None
        relative = path[len(self._prefix) :]
        if relative not in self._answers:
            file = self._files.get(relative)
            if file is None:
                return None
            self._answers[relative] = _answer(relative, file)
        return self._answers[relative]

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        answer = self._lookup(scope) if scope.get("type") == "http" else None
        if answer is None:
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": answer.headers})
        body = answer.body if scope.get("method") == "GET" else b""
        await send({"type": "http.response.body", "body": body})
