"""A push connection's Credentials tab says where the partner connects at any time: our host,
port and what they pin (SFTP host key, FTPS certificate), never the password. The dialog after
Create showed them once, and a partner who asked again later could not be told."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 60

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


def _credentials_tab(connection_id: int) -> AppTest:
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.button(key=f"edit_{connection_id}").click().run()
    at.session_state["detail_tab"] = "Credentials"
    return at.run()


PINNED = [(Method.SFTP, "SFTP host key"), (Method.FTP, "FTPS certificate")]


@pytest.mark.parametrize(("method", "pinned"), PINNED)
def test_the_credentials_tab_names_our_server_without_the_password(method: Method, pinned: str) -> None:
    services = Services()
    created, provisioned = services.create_connection(
        Connection(f"Acme {method.value}", "call_conversions", Direction.INBOUND, method, Methodology.PUSH)
    )
    assert provisioned is not None
    at = _credentials_tab(created.id)
    assert not at.exception, at.exception
    shown = [c.value for c in at.code]
    captions = [c.value for c in at.caption]
    assert provisioned.host in shown and "Host" in captions and "Port" in captions
    expected = provisioned.host_key_fingerprint or provisioned.certificate_fingerprint
    if expected is not None or method is Method.SFTP:  # no FTP server here: no certificate yet
        assert expected in shown and any(pinned in c for c in captions)
    assert provisioned.password not in shown
    assert all(provisioned.password not in c for c in captions)
