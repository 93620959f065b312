"""Every secret and fingerprint a person copies from the provisioned-credentials dialog is
whole in sight, at a common laptop's 1280 px (Chromium via Playwright against `streamlit run`,
the harness of tests/e2e/browser.py): the code boxes scrolled sideways, so the FTPS
certificate's fingerprint ran under the box's copy icon and past its edge, and so did the long
lines of the Copy all box. Checked after Create (FTP and SFTP push) and after Re-connect on the
Credentials tab."""

from __future__ import annotations

import time

import browser
import pytest
from browser import StreamlitApp, choose, click, open_path, type_into

pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed")
from playwright.sync_api import Browser, Locator, Page, expect

pytestmark = pytest.mark.skipif(bool(browser.missing_browser()), reason=str(browser.missing_browser()))

# For each code box: its text, whether it scrolls sideways, and whether any line of its text
# runs under the box's copy icon.
BOXES = """
(dialog) => [...dialog.querySelectorAll('[data-testid="stCode"]')].map(box => {
  const pre = box.querySelector('pre'), code = box.querySelector('code');
  const icon = box.querySelector('button').getBoundingClientRect();
  const range = document.createRange();
  range.selectNodeContents(code);
  const lines = [...range.getClientRects()].filter(r => r.width > 0);
  const covered = lines.some(r => r.right > icon.left && r.left < icon.right
                                  && r.bottom > icon.top && r.top < icon.bottom);
  const boxRight = pre.getBoundingClientRect().right;
  return {text: code.textContent, scrolls: pre.scrollWidth > pre.clientWidth + 1, covered,
          past_edge: lines.some(r => r.right > boxRight)};
})
"""


def assert_every_value_in_sight(page: Page, labels: tuple[str, ...]) -> None:
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Your provisioned credentials")
    expect(dialog.get_by_role("button", name="Copy to clipboard").nth(len(labels))).to_be_attached()
    page.mouse.move(0, 0)
    boxes = dialog.evaluate(BOXES)
    assert len(boxes) == len(labels) + 1, boxes  # each line, and Copy all
    hidden = [(b["text"][:60], b) for b in boxes if b["scrolls"] or b["covered"] or b["past_edge"]]
    assert hidden == [], hidden
    for label in labels:
        expect(dialog.get_by_text(label, exact=True)).to_be_visible()


def created(page: Page, method: str) -> str:
    name = f"Copyable {method} {int(time.time() * 1000)}"
    open_path(page, "create-connection")
    type_into(page, "wiz_name", name)
    click(page, "wiz_next")
    click(page, "wiz_next")
    choose(page, "wiz_method", method)
    choose(page, "wiz_methodology", "Push to us")
    click(page, "wiz_next")
    click(page, "wiz_next")
    click(page, "wiz_create")
    return name


def laptop_page(chromium_browser: Browser, app: StreamlitApp) -> Page:
    context = chromium_browser.new_context(base_url=app.url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(browser.RENDER_MS)
    return page


FTP_LINES = ("Host", "Port", "Username", "Password", "FTPS certificate (SHA-256)", "Connect with")
SFTP_LINES = ("Host", "Port", "Username", "Password", "SFTP host key")


def test_an_ftp_push_connections_fingerprint_and_login_are_whole_after_create_and_reconnect(
    chromium_browser: Browser, streamlit_server: StreamlitApp
) -> None:
    page = laptop_page(chromium_browser, streamlit_server)
    try:
        name = created(page, "FTP")
        assert_every_value_in_sight(page, FTP_LINES)
        click(page, "provisioned_done")
        row: Locator = browser.connection_row(page, name)
        row.get_by_role("button", name="Edit").click()
        browser.wait_rendered(page)
        page.get_by_role("tab", name="Credentials").click()
        browser.wait_rendered(page)
        click(page, "reconnect_save")
        assert_every_value_in_sight(page, FTP_LINES)
    finally:
        browser.screenshot(page, "copyable_ftp_1280")
        page.context.close()


def test_an_sftp_push_connections_host_key_and_login_are_whole_after_create(
    chromium_browser: Browser, streamlit_server: StreamlitApp
) -> None:
    page = laptop_page(chromium_browser, streamlit_server)
    try:
        created(page, "SFTP")
        assert_every_value_in_sight(page, SFTP_LINES)
    finally:
        browser.screenshot(page, "copyable_sftp_1280")
        page.context.close()
