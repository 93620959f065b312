"""Another site showing the app in a frame (clickjacking), tried against the app's real server
(streamlit_asgi.app): an invisible frame over a decoy page, a person logs in inside it and
clicks what the attacker lines up (Release, Discard, Run now). The login's SameSite=Strict
cookie keeps an existing login out of such a frame, not a login made in it; so every page the
server answers says it may be framed by the app's own pages only."""

from __future__ import annotations

from typing import Any

import pytest
from helpers.asgi import asgi_get

from app_pages._menu import url_paths


def answer_of(path: str) -> dict[str, Any]:
    import streamlit_asgi

    headers = {"Host": "127.0.0.1:8501", "Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "cross-site"}
    return asgi_get(streamlit_asgi.app, path, headers)


@pytest.mark.parametrize("path", ["/", *(f"/{p}" for p in url_paths())])
def test_no_other_site_may_frame_the_app(path: str) -> None:
    answer = answer_of(path)
    assert answer["headers"]["x-frame-options"] == ["SAMEORIGIN"], answer
    assert answer["headers"]["content-security-policy"] == ["frame-ancestors 'self'"], answer
