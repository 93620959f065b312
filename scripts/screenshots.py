"""Screenshots of the app's main pages for the README, taken in Debian's Chromium.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Starts the app on a throw-away demo data directory (the browser-test harness,
tests/e2e/browser.py), opens every page at 1400x900 and writes <out>/<page>.png: one per url
path (connections, create-connection, connection, validation, file-format, call-data, actions)
plus the wizard's provisioned-credentials dialog. Needs /usr/bin/chromium
(scripts/ensure-debian-packages.sh chromium) and Playwright's Python package; nothing is
downloaded.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import browser  # noqa: E402  (the harness lives with the tests)


def take(out: Path) -> list[Path]:
    from playwright.sync_api import expect

    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="connectbatch-screenshots-") as tmp:
        home = Path(tmp) / "home"
        with (
            browser.streamlit_app(home, log=Path(tmp) / "streamlit.log") as app,
            browser.chromium() as chrome,
        ):
            page = browser.new_page(chrome, app)

            def shot(name: str) -> None:
                page.evaluate("document.activeElement && document.activeElement.blur()")  # no focus ring
                page.wait_for_timeout(100)
                written.append(browser.screenshot(page, name, out))
                print(
                    f"  {written[-1].relative_to(REPO) if written[-1].is_relative_to(REPO) else written[-1]}"
                )

            def clean(name: str) -> None:
                problems = browser.exception_texts(page)
                if problems:
                    raise SystemExit(f"{name}: the page shows an exception:\n" + "\n".join(problems))

            # The root first: the router has to run once before deep links work (see the tests).
            browser.open_path(page, "")
            clean("connections")
            shot("connections")

            # The history of a connection with runs of every outcome.
            row = browser.connection_row(page, "Acme Call Tracking")
            row.get_by_role("button", name="View History").click()
            browser.wait_rendered(page)
            expect(page.get_by_role("tab", name="History", selected=True)).to_be_visible()
            clean("connection")
            shot("connection")

            for path in ("validation", "file-format", "call-data", "actions"):
                browser.open_path(page, path)
                clean(path)
                shot(path)

            # The wizard at its most telling step: an Email push with the pattern preview.
            browser.open_path(page, "create-connection")
            browser.type_into(page, "wiz_name", "Acme weekly calls")
            browser.click(page, "wiz_next")
            browser.click(page, "wiz_next")
            browser.choose(page, "wiz_method", "Email")
            browser.type_into(page, "wiz_pattern", "Conversions_202?_*.csv")
            clean("create-connection")
            shot("create-connection")

            # ... and the credentials it provisions, shown once.
            browser.click(page, "wiz_next")
            browser.click(page, "wiz_next")
            browser.type_into(page, "wiz_return_email", "ops@acme.example")
            browser.click(page, "wiz_create")
            expect(page.get_by_role("dialog")).to_contain_text("Your provisioned credentials")
            page.wait_for_timeout(300)  # the dialog's opening animation
            shot("provisioned-credentials")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots", help="output folder")
    args = parser.parse_args(argv)
    reason = browser.missing_browser()
    if reason:
        print(f"screenshots: {reason}", file=sys.stderr)
        return 1
    started = time.monotonic()
    print(f"screenshots: writing to {args.out}")
    written = take(args.out)
    print(f"screenshots: {len(written)} written in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
