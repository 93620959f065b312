"""The connection page's Mapping tab (issue 12): a sample file gives the suggested lines with
confidence and reason (unsure ones marked, partner text escaped), each line can be changed,
constants fill required columns the file lacks, and saving makes a new version that the tab
then shows as current."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from app_pages._mapping import IGNORE, constant_key, line_key, sample_key
from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 60


pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


SAMPLE = (
    b"complete_call_id,calling_phone_number,duration_a,duration_b,Agent\x1b[31m\r\n"
    b"c1,+15551234567,50,200,x\r\nc2,+15551234568,51,210,y\r\n"
)


def test_the_mapping_tab_suggests_edits_and_saves_a_new_version() -> None:
    services = Services()
    draft = Connection("Vendor", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    created, _ = services.create_connection(draft)

    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.button(key=f"edit_{created.id}").click().run()
    at.session_state["detail_tab"] = "Mapping"
    at.run()
    assert not at.exception, at.exception
    assert any("No field mapping saved" in i.value for i in at.info)

    at.session_state[sample_key(created.id)] = SAMPLE
    at.run()
    assert not at.exception, at.exception
    lines = [at.selectbox(key=line_key(created.id, i)).value for i in range(5)]
    assert lines == ["CallSessionId", "CallerId", "TalkDuration", "CallDuration", IGNORE]
    shown = [t.value for t in at.text]
    assert "⚠ duration_a" in shown  # decided by values: marked for a look
    assert not any("\x1b" in t for t in shown) and any("Agent\\x1b[31m" in t for t in shown)

    at.selectbox(key=line_key(created.id, 4)).set_value("SubId1")
    at.text_input(key=constant_key(created.id, "CampaignId")).input("1234")
    at.button(key=f"mapping_save_{created.id}").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]

    saved = services.mapping("Vendor")
    assert saved is not None and saved.version == 1
    assert saved.columns["Agent\x1b[31m"] == "SubId1"
    assert saved.constants == {"CampaignId": "1234"}
    assert any("Saved field mapping version 1" in s.value for s in at.success)
    assert any("version 1" in m.value for m in at.markdown)


def test_a_sample_without_the_key_column_says_the_partner_must_send_it() -> None:
    """The key takes no constant (every row would be a duplicate of the first): the tab says
    so, as the CLI does, instead of offering nothing for it without a word."""
    services = Services()
    draft = Connection("Keyless", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    created, _ = services.create_connection(draft)
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.button(key=f"edit_{created.id}").click().run()
    at.session_state["detail_tab"] = "Mapping"
    at.session_state[sample_key(created.id)] = b"calling_phone_number,duration_a\r\n+15551234567,50\r\n"
    at.run()
    assert not at.exception, at.exception
    assert any("**CallSessionId**" in w.value and "takes no constant" in w.value for w in at.warning)
    assert "CallSessionId" not in [t.label for t in at.text_input]
