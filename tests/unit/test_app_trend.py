"""The Validation page's reject-rate chart, HTML drawn on the server (app_pages/_trend.py):
UTC times whatever the moment's zone, a point (with its tooltip) per run, one line per
connection, and connection names escaped."""

from __future__ import annotations

import datetime as dt
import math
import re

from helpers.html_fragment import Parsed

from app_pages import _trend

TOKYO = dt.timezone(dt.timedelta(hours=9))


def test_a_single_run_is_a_point_with_its_time_in_utc_and_its_rate() -> None:
    html = Parsed(
        _trend.reject_rate_html([("Acme", dt.datetime(2026, 12, 6, 7, 56, 10, tzinfo=TOKYO), 0.0123)])
    )
    [(point, _)] = html.of_class("pt")
    assert point["title"] == "Connection: Acme\nStarted (UTC): 2026-12-05 22:56:10\nReject rate (%): 1.23"
    assert not html.of_class("seg")  # nothing to join a single point to
    ticks = [t for _, t in html.of_class("tick")]
    assert ticks and all(re.fullmatch(r"Dec 05 22:5\d", t) for t in ticks), ticks


def left_top(style: str) -> tuple[float, float]:
    found = re.search(r"left:([\d.]+)%;top:([\d.]+)%", style)
    assert found is not None, style
    return float(found.group(1)), float(found.group(2))


def test_each_connection_is_one_line_in_time_order_with_its_own_colour_in_the_legend() -> None:
    start = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    rates = [
        ("Beta", start + dt.timedelta(days=2), 0.5),
        ("Acme", start + dt.timedelta(days=1), 0.1),
        ("Acme", start, 0.2),
        ("Beta", start, 0.0),
    ]
    html = Parsed(_trend.reject_rate_html(rates))
    segments = [a["style"] for a, _ in html.of_class("seg")]
    assert [s.rsplit("background:", 1)[1] for s in segments] == list(_trend.PALETTE[:2])
    assert len(html.of_class("pt")) == 4
    # each line starts at its connection's first run: both start at the left edge
    assert [left_top(s)[0] for s in segments] == [left_top(segments[0])[0]] * 2
    assert [t for _, t in html.of_class("swatch")] == ["", ""]
    assert "Acme</span>" in _trend.reject_rate_html(rates)
    ticks = [t for _, t in html.of_class("tick")]
    assert ticks[0] == "Dec 01 00:00" and len(ticks) <= _trend.TICKS_X


def test_a_segment_joins_its_two_points() -> None:
    start = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    html = Parsed(
        _trend.reject_rate_html([("Acme", start, 0.1), ("Acme", start + dt.timedelta(hours=5), 0.4)])
    )
    [(segment, _)] = html.of_class("seg")
    (x1, y1), (x2, y2) = (left_top(a["style"]) for a, _ in html.of_class("pt"))
    assert left_top(segment["style"]) == (x1, y1)
    # in the box's own units (percent of width and of height scale differently)
    w, h = _trend.WIDTH, _trend.HEIGHT
    dx, dy = (x2 - x1) * w / 100, (y2 - y1) * h / 100
    length = float(re.search(r"width:([\d.]+)%", segment["style"]).group(1))  # type: ignore[union-attr]
    angle = float(re.search(r"rotate\((-?[\d.]+)deg\)", segment["style"]).group(1))  # type: ignore[union-attr]
    assert abs(length * w / 100 - math.hypot(dx, dy)) < 0.2
    assert abs(angle - math.degrees(math.atan2(dy, dx))) < 0.2


def test_a_hostile_connection_name_stays_text() -> None:
    name = '<script>alert(1)</script>\n\n# $x$ :red[y] "quoted" & more'
    fragment = _trend.reject_rate_html([(name, dt.datetime(2026, 12, 1), 0.25)])
    assert "<script>" not in fragment and "&lt;script&gt;" in fragment
    [(point, _)] = Parsed(fragment).of_class("pt")
    # Streamlit acts on `:red[` in Markdown: an invisible joiner breaks it (escaping.html_text)
    assert point["title"].startswith('Connection: <script>alert(1)</script> # $x$ :\u2060red[y] "quoted"')


def test_the_y_axis_ends_at_a_round_value_above_the_highest_rate() -> None:
    assert [_trend.nice_ceiling(v) for v in (0, 0.3, 7, 12, 33.3, 100)] == [1, 0.5, 10, 20, 50, 100]
