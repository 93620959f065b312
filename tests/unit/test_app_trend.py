"""The Validation page's reject-rate chart, an SVG drawn on the server (app_pages/_trend.py):
UTC times whatever the moment's zone, a point (with its tooltip) per run, one line per
connection, and connection names escaped, since the fragment goes through `st.markdown` with
HTML allowed."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

from app_pages import _trend

SVG = "{http://www.w3.org/2000/svg}"
TOKYO = dt.timezone(dt.timedelta(hours=9))


def svg_of(fragment: str) -> ET.Element:
    """The fragment's <svg>, parsed as XML: it must be well-formed."""
    return ET.fromstring(re.search(r"<svg .*?</svg>", fragment, re.S).group(0))  # type: ignore[union-attr]


def test_a_single_run_is_a_point_with_its_time_in_utc_and_its_rate() -> None:
    fragment = _trend.reject_rate_svg([("Acme", dt.datetime(2026, 12, 6, 7, 56, 10, tzinfo=TOKYO), 0.0123)])
    svg = svg_of(fragment)
    [point] = svg.iter(f"{SVG}circle")
    assert point.findtext(f"{SVG}title") == (
        "Connection: Acme\nStarted (UTC): 2026-12-05 22:56:10\nReject rate (%): 1.23"
    )
    assert not list(svg.iter(f"{SVG}polyline"))  # nothing to join a single point to
    ticks = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "tick"]
    assert ticks and all(re.fullmatch(r"Dec 05 22:5\d", str(t)) for t in ticks), ticks


def test_each_connection_is_one_line_in_time_order_with_its_own_colour_in_the_legend() -> None:
    start = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    rates = [
        ("Beta", start + dt.timedelta(days=2), 0.5),
        ("Acme", start + dt.timedelta(days=1), 0.1),
        ("Acme", start, 0.2),
        ("Beta", start, 0.0),
    ]
    fragment = _trend.reject_rate_svg(rates)
    lines = list(svg_of(fragment).iter(f"{SVG}polyline"))
    assert [line.get("stroke") for line in lines] == list(_trend.PALETTE[:2])
    xs = [[float(p.split(",")[0]) for p in str(line.get("points")).split()] for line in lines]
    assert all(row == sorted(row) for row in xs)
    assert "Acme</span>" in fragment and "Beta</span>" in fragment
    ticks = [t.text for t in svg_of(fragment).iter(f"{SVG}text") if t.get("class") == "tick"]
    assert ticks[0] == "Dec 01 00:00" and len(ticks) <= _trend.TICKS_X


def test_a_hostile_connection_name_is_text_and_keeps_the_fragment_on_one_html_block() -> None:
    name = '<script>alert(1)</script>\n\n# $x$ :red[y] "quoted" & more'
    fragment = _trend.reject_rate_svg([(name, dt.datetime(2026, 12, 1), 0.25)])
    assert "<script>" not in fragment and "&lt;script&gt;" in fragment
    # A blank line would end st.markdown's HTML block and read the rest as Markdown.
    assert "\n\n" not in fragment.split("</style>", 1)[1]
    assert "\n" not in fragment.split("</style>", 1)[1]
    [title] = [t.text for t in svg_of(fragment).iter(f"{SVG}title")]
    assert title is not None
    # Streamlit acts on `:red[` even in HTML: an invisible joiner breaks it (escaping.html_text)
    assert title.startswith('Connection: <script>alert(1)</script> # $x$ :\u2060red[y] "quoted"')


def test_the_y_axis_ends_at_a_round_value_above_the_highest_rate() -> None:
    assert [_trend._nice_ceiling(v) for v in (0, 0.3, 7, 12, 33.3, 100)] == [1, 0.5, 10, 20, 50, 100]
