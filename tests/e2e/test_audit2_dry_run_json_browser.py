"""The File format page's "Raw validation result (JSON)" shows the partner's cells it quotes
escaped, as the Validation page's does (Chromium, an audit of 2026-12-07): the dry run of a
file whose repeated CallSessionId held a right-to-left override drew it as sent in the JSON
tree, and the reviewer read the key reordered."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from browser import open_path, wait_rendered
from helpers import call_csv

if TYPE_CHECKING:
    from playwright.sync_api import Page

KEY = "k\u202eey"


def test_the_dry_runs_raw_result_shows_a_partners_override_escaped(app_page: Page, tmp_path: Path) -> None:
    sample = tmp_path / "calls.csv"  # the same key three times: quoted as unexpected values
    sample.write_bytes(call_csv(3, overrides={i: {"CallSessionId": KEY} for i in range(3)}))
    open_path(app_page, "file-format")
    app_page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(sample))
    wait_rendered(app_page)
    app_page.get_by_text("Raw validation result (JSON)").click()
    wait_rendered(app_page)

    raw = app_page.locator('[data-testid="stExpander"]').filter(has_text="Raw validation result")
    # drawn once the expander has opened: on a busy machine after the script run has ended
    raw.locator('[data-testid="stCode"]').first.wait_for(timeout=15_000)
    # Every node of a JSON tree opened, or the one text of the JSON shown: what a reviewer reads.
    for _ in range(300):
        closed = raw.locator(".node-ellipsis")
        if closed.count() == 0:
            break
        closed.first.click()
    text = raw.inner_text()
    assert "partial_unexpected_list" in text
    assert "\u202e" not in text
    assert "k\\u202eey" in text
