"""Clicks: the browser over ingested clicks for partner managers (app_pages/_browser.py)."""

from __future__ import annotations

from app_pages import _browser

if __name__ == "__main__":
    _browser.render("clicks")
