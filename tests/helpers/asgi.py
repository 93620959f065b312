"""One HTTP request through an ASGI app, as its server would pass it: no server, no client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def asgi_get(
    app: Callable[..., Any], path: str, headers: dict[str, str] | None = None, scheme: str = "http"
) -> dict[str, Any]:
    """A GET of `path` (with its query): {"status": ..., "headers": {lower-case name: [values]},
    "body": bytes}."""
    return asgi_request(app, path, "GET", headers, scheme)


def asgi_request(
    app: Callable[..., Any],
    path: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    scheme: str = "http",
) -> dict[str, Any]:
    """A request of `path` (with its query) without a body: as `asgi_get`."""
    raw_path, _, query = path.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": scheme, "path": raw_path, "raw_path": raw_path.encode(), "query_string": query.encode(),
        "root_path": "", "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("203.0.113.9", 40000), "server": ("127.0.0.1", 8501),
    }  # fmt: skip
    answer: dict[str, Any] = {"headers": {}, "body": b""}

    async def run() -> None:
        sent = asyncio.Event()
        asked = 0

        async def receive() -> dict[str, Any]:
            # The request once; then, as a server does, the disconnect once the answer is sent
            # (Starlette's FileResponse listens for it while it sends).
            nonlocal asked
            asked += 1
            if asked == 1:
                return {"type": "http.request", "body": b"", "more_body": False}
            await sent.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                for name, value in message["headers"]:
                    answer["headers"].setdefault(bytes(name).decode().lower(), []).append(
                        bytes(value).decode()
                    )
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")
                if not message.get("more_body"):
                    sent.set()

        await app(scope, receive, send)

    # On a thread of its own: an earlier test may have left an event loop running in this one
    # (Playwright's sync API does), where asyncio.run() refuses to start.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result(timeout=60)
    return answer
