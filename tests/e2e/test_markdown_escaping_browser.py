"""`escaping.markdown_text` as Chromium draws it: a partner's name or reason, put through it and
shown with `st.markdown`, reads exactly as typed, with no link, icon, emoji or colour that
Streamlit would have made of it (`:smile:`, `:material/home:`, `:red[...]`, `http://`, `www.`,
a leading `- `). Found by a tester: a connection named `... :red[red] [lnk](http://evil)` showed
a red word and a clickable link on the Connections list.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import browser
import pytest
from browser import StreamlitApp

from app_pages._trend import reject_rate_html
from connectbatch.escaping import markdown_text

pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed")
from playwright.sync_api import Browser, Locator

pytestmark = pytest.mark.skipif(bool(browser.missing_browser()), reason=str(browser.missing_browser()))

HOSTILE = [
    "Probe outbound :smile: :material/home: :+1x:",
    "Colour :red[red] :blue-background[blue] :green-badge[ok]",
    "Links http://evil.example/x https://evil.example www.evil.example",
    "- a list item",
    "1. a numbered item",
    "**Bold** _em_ `code` [lnk](http://evil) <b>x</b> $x^2$ ~~s~~ # h",
    "could not connect to 127.0.0.1:2222: connection refused at 12:30",
    # HTML references were decoded: a link, real bidi marks, `&amp;` shown as `&`
    "www&period;evil&period;example&rlm;&lrm;_calls.csv http&colon;//evil.example &amp;amp; &ZeroWidthSpace;",
]

CHART_RUN = dt.datetime(2026, 12, 1)  # the run drawn in each case's reject-rate chart

SCRIPT = """
import json, sys
import streamlit as st
for i, text in enumerate(json.loads(sys.argv[1])):
    with st.container(key=f"case_{i}"):
        st.markdown(text)
for i, fragment in enumerate(json.loads(sys.argv[2])):
    with st.container(key=f"trend_{i}"):
        st.html(fragment)
"""


@pytest.fixture(scope="module")
def shown(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamlitApp]:
    """A bare Streamlit script showing each HOSTILE text through markdown_text."""
    import json

    folder = tmp_path_factory.mktemp("markdown")
    script = folder / "show.py"
    script.write_text(SCRIPT)
    port = browser.free_port()
    log = folder / "streamlit.log"
    command = [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1",
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
               "--", json.dumps([markdown_text(t) for t in HOSTILE]),
               json.dumps([reject_rate_html([(t, CHART_RUN, 0.5)]) for t in HOSTILE])]  # fmt: skip
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    app = StreamlitApp(f"http://127.0.0.1:{port}", Path(folder), process, log)
    try:
        deadline = time.monotonic() + browser.STARTUP_SECONDS
        while not browser._healthy(app.url):
            assert time.monotonic() < deadline and process.poll() is None, app.log_tail()
            time.sleep(0.2)
        yield app
    finally:
        browser._stop(process)


def test_hostile_text_reads_as_typed_with_nothing_streamlit_made_of_it(
    shown: StreamlitApp, chromium_browser: Browser
) -> None:
    page = browser.new_page(chromium_browser, shown)
    try:
        page.goto("/")
        for i, typed in enumerate(HOSTILE):
            box = page.locator(f".st-key-case_{i} [data-testid='stMarkdownContainer']")
            box.wait_for()
            drawn = _drawn(box)
            assert drawn == typed, f"case {i}"
            # Plain text in one paragraph: no link, list, heading, emphasis, icon, colour or badge.
            made = box.locator("a, ul, ol, h1, b, strong, em, code, del, span, [class*='stMarkdown']")
            assert made.count() == 0, f"case {i}: {box.inner_html()}"
    finally:
        page.context.close()


def test_hostile_names_in_the_reject_rate_chart_read_as_typed(
    shown: StreamlitApp, chromium_browser: Browser
) -> None:
    """The Validation page's chart (app_pages/_trend.py) is HTML shown with st.html: a
    connection's name in it (a tooltip, the legend) must stay text."""
    page = browser.new_page(chromium_browser, shown)
    try:
        page.goto("/")
        for i, typed in enumerate(HOSTILE):
            box = page.locator(f".st-key-trend_{i}")
            box.locator(".pt").wait_for()
            tip = (box.locator(".pt").get_attribute("title") or "").replace("\u2060", "")
            assert tip.startswith(f"Connection: {typed}\nStarted (UTC): 2026-12-01 00:00:00"), f"case {i}"
            assert box.locator(".legend span").inner_text().replace("\u2060", "") == typed, f"case {i}"
            made = box.locator(".legend a, .legend b, .legend code, .legend em, .katex, h1, ul, ol")
            assert made.count() == 0, f"case {i}: {box.inner_html()}"
    finally:
        page.context.close()


def _drawn(box: Locator) -> str:
    """The box's text once drawn: Streamlit attaches a markdown container before its text
    (an empty read under a loaded CI machine). The joiner is invisible."""
    deadline = time.monotonic() + 10
    while not (text := box.inner_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return text.replace("\u2060", "")
