"""The Validation page's reject-rate chart tells a run's start time in UTC, like every other
time in the app, whatever the browser's time zone (Chromium via Playwright against `streamlit
run`, the harness of tests/e2e/browser.py). It used the browser's zone: a run started at
22:56 UTC read "Dec 06" in Tokyo, its tooltip had the day only, and the demo's runs, started
within one second, made the time axis read ".600".

The chart is HTML drawn on the server (app_pages/_trend.py, issue 13: Vega's JavaScript cost
the page's new sessions); a point's tooltip is its `title`, read here without hovering
(Chromium shows native tooltips outside the page, where Playwright cannot see them)."""

from __future__ import annotations

import re

import browser
import pytest
from browser import StreamlitApp, open_path

pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed")
from playwright.sync_api import Browser, expect

pytestmark = pytest.mark.skipif(bool(browser.missing_browser()), reason=str(browser.missing_browser()))

# 25 hours apart: a moment's local day always differs between the two.
ZONES = ("Pacific/Kiritimati", "Pacific/Pago_Pago")
CHART = ".cb-trend"


def chart_texts(chromium_browser: Browser, app: StreamlitApp, zone: str) -> tuple[list[str], list[str]]:
    """(each point's tooltip, the time axis's labels) of the reject-rate chart."""
    context = chromium_browser.new_context(
        base_url=app.url, viewport={"width": 1440, "height": 900}, timezone_id=zone
    )
    page = context.new_page()
    page.set_default_timeout(browser.RENDER_MS)
    try:
        open_path(page, "validation")
        chart = page.locator(CHART).last
        chart.scroll_into_view_if_needed()
        points = chart.locator(".pt")
        expect(points.first).to_be_visible()
        labels = [" ".join(str(t).split()) for t in points.evaluate_all("ps => ps.map(p => p.title)")]
        ticks = chart.locator(".tick").all_inner_texts()
        assert "Started (UTC)" in chart.locator(".xtitle").inner_text()
        return labels, ticks
    finally:
        browser.screenshot(page, f"reject_rate_{zone.replace('/', '_')}")
        context.close()


def test_the_reject_rate_charts_times_are_utc_to_the_minute_in_any_time_zone(
    chromium_browser: Browser, streamlit_server: StreamlitApp
) -> None:
    east, east_ticks = chart_texts(chromium_browser, streamlit_server, ZONES[0])
    west, west_ticks = chart_texts(chromium_browser, streamlit_server, ZONES[1])
    assert east == west, (east, west)
    assert east_ticks == west_ticks, (east_ticks, west_ticks)
    started = [re.search(r"Started \(UTC\): (\S+ \S+)", label) for label in east]
    assert all(s and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", s.group(1)) for s in started), east
    assert east_ticks and all(re.fullmatch(r"[A-Z][a-z]{2} \d\d \d\d:\d\d", t) for t in east_ticks), (
        east_ticks
    )
