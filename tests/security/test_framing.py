"""Another site showing the app in a frame (clickjacking), tried against the app's real server
(streamlit_asgi.app): an invisible frame over a decoy page, a person logs in inside it and
clicks what the attacker lines up (Release, Discard, Run now). The login's SameSite=Strict
cookie keeps an existing login out of such a frame, not a login made in it; so every page the
server answers says it may be framed by the app's own pages only."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from app_pages._menu import url_paths


def answer_of(path: str) -> dict[str, Any]:
    import streamlit_asgi

    scope = {
        "type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8501"), (b"sec-fetch-dest", b"iframe"),
                    (b"sec-fetch-site", b"cross-site")],
        "scheme": "http", "server": ("127.0.0.1", 8501), "client": ("203.0.113.9", 40000),
        "root_path": "", "http_version": "1.1",
    }  # fmt: skip
    answer: dict[str, Any] = {"headers": {}}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            for name, value in message["headers"]:
                answer["headers"].setdefault(name.decode().lower(), []).append(value.decode())

    # On a thread of its own: an earlier test may leave an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, streamlit_asgi.app(scope, receive, send)).result(timeout=60)
    return answer


@pytest.mark.parametrize("path", ["/", *(f"/{p}" for p in url_paths())])
def test_no_other_site_may_frame_the_app(path: str) -> None:
    answer = answer_of(path)
    assert answer["headers"]["x-frame-options"] == ["SAMEORIGIN"], answer
    assert answer["headers"]["content-security-policy"] == ["frame-ancestors 'self'"], answer
