"""The Connections list's layout in a real browser (Chromium via Playwright against `streamlit
run`, the harness of tests/e2e/browser.py), at the widths a tester saw it break: a held
connection's row keeps its cells in line with the other rows and its actions on one line, and
the Create Connection button's label is never cut ("Create Connec…")."""

from __future__ import annotations

from collections.abc import Iterator

import browser
import pytest
from browser import StreamlitApp, open_path

pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed")
from playwright.sync_api import Browser, Locator, Page, expect

pytestmark = pytest.mark.skipif(bool(browser.missing_browser()), reason=str(browser.missing_browser()))

WIDTHS = [1400, 1100]  # the tester's width, and a narrower laptop's
DESKTOP = [1280, 1440]  # the common laptop widths, where a row must be one line
COLUMN = '[data-testid="stColumn"]'


# Elements under `root` whose text is clipped (an ellipsis, or hidden overflow).
CLIPPED = """
(root) => [root, ...root.querySelectorAll('*')]
  .filter(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflow !== 'visible')
  .map(e => e.textContent)
"""


@pytest.fixture(scope="module", autouse=True)
def router_first(streamlit_server: StreamlitApp, chromium_browser: Browser) -> Iterator[None]:
    """Open the app's root once first (see test_browser.py's deep-link test)."""
    page = browser.new_page(chromium_browser, streamlit_server)
    open_path(page, "")
    page.context.close()
    yield


@pytest.fixture(params=WIDTHS, ids=lambda w: f"{w}px")
def list_page(
    request: pytest.FixtureRequest, chromium_browser: Browser, streamlit_server: StreamlitApp
) -> Iterator[Page]:
    yield from _list_page(request, chromium_browser, streamlit_server)


@pytest.fixture(params=DESKTOP, ids=lambda w: f"{w}px")
def desktop_list_page(
    request: pytest.FixtureRequest, chromium_browser: Browser, streamlit_server: StreamlitApp
) -> Iterator[Page]:
    yield from _list_page(request, chromium_browser, streamlit_server)


def _list_page(
    request: pytest.FixtureRequest, chromium_browser: Browser, streamlit_server: StreamlitApp
) -> Iterator[Page]:
    """The Connections list in a window `request.param` pixels wide; screenshotted at the end."""
    context = chromium_browser.new_context(
        base_url=streamlit_server.url, viewport={"width": request.param, "height": 900}
    )
    page = context.new_page()
    page.set_default_timeout(browser.RENDER_MS)
    try:
        open_path(page, "")
        expect(page.locator('[class*="st-key-row_"]').first).to_be_visible()
        yield page
    finally:
        browser.screenshot(page, request.node.name)
        context.close()


def lefts(columns: Locator) -> list[float]:
    return [round(box["x"]) for box in (c.bounding_box() for c in columns.all()) if box is not None]


def test_a_held_connections_row_keeps_its_cells_in_line_with_the_others_and_its_actions_on_one_line(
    list_page: Page,
) -> None:
    rows = list_page.locator('[class*="st-key-row_"]')
    needs_review = list_page.get_by_text("Needs review")
    held, clean = rows.filter(has=needs_review).first, rows.filter(has_not=needs_review).first
    expect(held).to_be_visible()  # the demo holds a batch for review
    row = held

    # Every row is a bordered box inset from the header alike: a held row's cells start where
    # a clean row's do (the link in the Status cell widened it and shifted the rest right).
    cells, others = lefts(row.locator(COLUMN)), lefts(clean.locator(COLUMN))
    assert len(cells) == len(others) == len(lefts(list_page.locator(f".st-key-list_header {COLUMN}"))) == 7
    assert all(abs(c - o) <= 2 for c, o in zip(cells, others, strict=True)), (cells, others)
    status = row.locator(COLUMN).nth(4)
    assert status.inner_text().strip() in {"None", "In Progress", "Completed", "Failed"}
    tops = {round(b["y"]) for b in (row.get_by_role("button", name=n).bounding_box()
                                    for n in ("Edit", "View History")) if b is not None}  # fmt: skip
    assert len(tops) == 1, tops


def test_the_create_connection_label_is_shown_whole(list_page: Page) -> None:
    button = list_page.locator(".st-key-create_connection button")
    expect(button).to_contain_text("Create Connection")
    assert button.evaluate(CLIPPED) == []


def test_at_laptop_widths_the_header_and_every_row_are_one_line_with_shared_column_edges(
    desktop_list_page: Page,
) -> None:
    """At 1280 px the header's "Actions" wrapped onto a line of its own (the header 67 px tall
    for a 26 px line) and some rows put their Actions under the other cells, while others did
    not, so the columns of the rows no longer lined up."""
    page = desktop_list_page
    header = page.locator(f".st-key-list_header {COLUMN}")
    boxes = [c.bounding_box() for c in header.all()]
    assert len(boxes) == 7 and all(b is not None for b in boxes)
    line = min(b["height"] for b in boxes if b is not None)
    block = page.locator(".st-key-list_header").bounding_box()
    assert block is not None and block["height"] < 1.5 * line, (block, line)
    assert len({round(b["y"]) for b in boxes if b is not None}) == 1, boxes
    rows = page.locator('[class*="st-key-row_"]')
    edges = []
    for row in rows.all():
        cells = [c.bounding_box() for c in row.locator(COLUMN).all()]
        assert len({round(b["y"]) for b in cells if b is not None}) == 1, (row.inner_text(), cells)
        edges.append(lefts(row.locator(COLUMN)))
    assert len(edges) >= 2
    assert all(abs(a - b) <= 2 for row in edges for a, b in zip(row, edges[0], strict=True)), edges
    for cell in header.all() + rows.locator(COLUMN).all():  # nothing cut to fit
        assert cell.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), cell.inner_text()
    # nor inside a cell: the held row's "Needs review" link read "Needs revi…" at 1280 px
    assert [t for row in rows.all() for t in row.evaluate(CLIPPED)] == []
