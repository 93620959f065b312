"""The Triage page's items show their action links whole at common laptop widths (Chromium via
Playwright against `streamlit run`, the harness of tests/e2e/browser.py): the demo's refused
file read "Open the connection (the partne…" at 1280 and 1440 px."""

from __future__ import annotations

import browser
import pytest
from browser import StreamlitApp, open_path

pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed")
from playwright.sync_api import Browser, expect

pytestmark = pytest.mark.skipif(bool(browser.missing_browser()), reason=str(browser.missing_browser()))

# Elements under `root` whose text is clipped (an ellipsis, or hidden overflow).
CLIPPED = """
(root) => [root, ...root.querySelectorAll('*')]
  .filter(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflow !== 'visible')
  .map(e => e.textContent)
"""


@pytest.mark.parametrize("width", [1280, 1440])
def test_a_triage_items_action_link_is_shown_whole(
    chromium_browser: Browser, streamlit_server: StreamlitApp, width: int
) -> None:
    context = chromium_browser.new_context(
        base_url=streamlit_server.url, viewport={"width": width, "height": 900}
    )
    page = context.new_page()
    page.set_default_timeout(browser.RENDER_MS)
    try:
        open_path(page, "triage")
        items = page.locator('[class*="st-key-triage_item_"]')
        expect(items.first).to_be_visible()
        links = items.get_by_test_id("stPageLink")
        expect(links.filter(has_text="Open the connection (the partner resends)")).to_have_count(1)
        assert [t for link in links.all() for t in link.evaluate(CLIPPED) if t.strip()] == []
    finally:
        browser.screenshot(page, f"triage_{width}")
        context.close()
