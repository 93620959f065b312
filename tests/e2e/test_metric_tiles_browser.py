"""The metric tiles of Call data and Validation show their whole value at a common laptop's
1280 px (Chromium via Playwright against `streamlit run`, the harness of tests/e2e/browser.py):
a sale amount between $10,000 and $100,000 read "$35,171…", and a held run's status
"Needs revi…"."""

from __future__ import annotations

import re

import browser
import pytest
from browser import StreamlitApp, open_path, wait_rendered

pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed")
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.skipif(bool(browser.missing_browser()), reason=str(browser.missing_browser()))

# The metric values cut to fit their tile (an ellipsis, or hidden overflow).
CUT_VALUES = """
() => [...document.querySelectorAll('[data-testid="stMetricValue"]')]
  .filter(v => [v, ...v.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1))
  .map(v => v.textContent)
"""


def laptop_page(chromium_browser: Browser, app: StreamlitApp) -> Page:
    context = chromium_browser.new_context(base_url=app.url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(browser.RENDER_MS)
    return page


def pick(page: Page, key: str, option: str) -> None:
    """Types the option into the multiselect before clicking it: its menu renders only the
    options in view, and the shared server's data grows with the tests before this one (CI
    once timed out waiting for "CA" below the fold)."""
    page.locator(f".st-key-{key}").click()
    page.locator(f".st-key-{key} input").fill(option)
    page.get_by_role("option").filter(has_text=re.compile(f"^{re.escape(option)}$")).click()
    page.keyboard.press("Escape")
    wait_rendered(page)


def test_a_sale_amount_in_the_tens_of_thousands_is_shown_whole_at_1280(
    chromium_browser: Browser, streamlit_server: StreamlitApp
) -> None:
    page = laptop_page(chromium_browser, streamlit_server)
    try:
        open_path(page, "call-data")
        # The demo's Canadian calls through Marchex sold for $35,171.43.
        pick(page, "calls_countries", "CA")
        pick(page, "calls_providers", "Marchex")
        assert page.evaluate(CUT_VALUES) == []
        tile = page.get_by_test_id("stMetric").filter(has_text="Sale amount")
        expect(tile.get_by_test_id("stMetricValue")).to_have_text("$35.2K")
    finally:
        browser.screenshot(page, "call_data_tiles_1280")
        page.context.close()


def test_a_held_runs_status_and_review_are_shown_whole_at_1280(
    chromium_browser: Browser, streamlit_server: StreamlitApp
) -> None:
    page = laptop_page(chromium_browser, streamlit_server)
    try:
        open_path(page, "validation")  # the held run first: the most urgent
        status = page.get_by_test_id("stMetric").filter(has_text="Status")
        expect(status.get_by_test_id("stMetricValue")).to_have_text("Needs review")
        assert page.evaluate(CUT_VALUES) == []
    finally:
        browser.screenshot(page, "validation_tiles_1280")
        page.context.close()
