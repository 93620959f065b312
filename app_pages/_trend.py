"""The Validation page's reject rate per connection, drawn as an SVG on the server.

Why not a Vega-Lite chart like the others (app_pages/_charts.py): it was the page's only chart,
and the browser loads and compiles Vega's ~1 MB of JavaScript for the first chart of a session:
~0.4 s of a new session's Validation page on a 2-core machine (issue 13's goal is 1.5 s), for
a line per connection. Drawn here, the page needs no chart library at all, and every time is
UTC by construction, whatever the browser's time zone (a Vega chart used the browser's zone
until told otherwise).

One line per connection with a point per run (a connection with one run is visible too); each
point's tooltip (its SVG <title>) names the connection, the run's start in UTC to the second
and the rate; the time axis reads "Dec 05 22:56". Connection names are partner-facing text
chosen by people: every one is escaped for HTML, in the SVG and in the legend.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

from connectbatch.escaping import html_text

# Vega's default ("tableau10") palette: the colours the chart had before.
PALETTE = (
    "#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b",
    "#eeca3b", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac",
)  # fmt: skip
WIDTH, HEIGHT = 760, 280
LEFT, RIGHT, TOP, BOTTOM = 56, 18, 12, 46
TICKS_X, TICKS_Y = 6, 5
# Steps of the time axis, the first that gives at most TICKS_X ticks is taken.
STEPS = [dt.timedelta(minutes=m) for m in (1, 5, 15, 30, 60, 180, 360, 720)] + [
    dt.timedelta(days=d) for d in (1, 2, 7, 14, 30, 91, 182, 365)
]
STYLE = """<style>
.cb-trend svg { width: 100%; height: auto; display: block; font: 11px sans-serif; }
.cb-trend .axis text { fill: #555; }
.cb-trend .axis line, .cb-trend .axis path { stroke: #ccc; }
.cb-trend circle { stroke: #fff; stroke-width: 1; }
.cb-trend circle:hover { r: 6; }
.cb-trend .legend { display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 0.85rem; margin-top: 4px; }
.cb-trend .legend span { overflow-wrap: anywhere; }
.cb-trend .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 5px; }
</style>"""

Rate = tuple[str, dt.datetime, float]  # (connection, run start, share of rows rejected 0..1)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above `value` (a y axis's top)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value - 1e-12)


def _time_ticks(first: dt.datetime, last: dt.datetime) -> list[dt.datetime]:
    span = last - first
    step = next((s for s in STEPS if span / s <= TICKS_X), STEPS[-1])
    if step >= dt.timedelta(days=1):
        start = first.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        seconds = int(step.total_seconds())
        since = first.replace(hour=0, minute=0, second=0, microsecond=0)
        start = since + dt.timedelta(seconds=math.floor((first - since).total_seconds() / seconds) * seconds)
    ticks = []
    tick = start
    while tick <= last:
        if tick >= first:
            ticks.append(tick)
        tick += step
    return ticks


def _text(value: str) -> str:
    """Text for the HTML (`escaping.html_text`), on one line: the fragment goes through
    `st.markdown`, where a blank line would end the HTML block (a name is one line, its control
    characters made visible; a tooltip's own lines are `&#10;`)."""
    return "&#10;".join(html_text(line) for line in value.split("\n"))


def reject_rate_svg(rates: Sequence[Rate]) -> str:
    """The chart and its legend as one line of HTML for `st.markdown(..., unsafe_allow_html=True)`:
    `st.html` sanitises with DOMPurify's HTML profile, which drops SVG."""
    points = [(" ".join(name.split()), _utc(started), rate * 100) for name, started, rate in rates]
    names = sorted({name for name, _, _ in points})
    colour = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
    first = min(p[1] for p in points)
    last = max(p[1] for p in points)
    if last - first < dt.timedelta(minutes=2):  # one moment: a window around it
        first, last = first - dt.timedelta(minutes=1), last + dt.timedelta(minutes=1)
    top = _nice_ceiling(max(p[2] for p in points))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span = (last - first).total_seconds()

    def x(moment: dt.datetime) -> float:
        return LEFT + (moment - first).total_seconds() / span * plot_w

    def y(percent: float) -> float:
        return TOP + plot_h - percent / top * plot_h

    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="Reject rate per connection" '
        'xmlns="http://www.w3.org/2000/svg">',
        '<g class="axis y-axis">',
    ]
    for i in range(TICKS_Y + 1):
        value = top * i / TICKS_Y
        at = y(value)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{at:.1f}" y2="{at:.1f}"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{at + 4:.1f}" text-anchor="end">{value:g}</text>')
    parts.append(
        f'<text class="axis-title" transform="translate(14 {TOP + plot_h / 2:.1f}) rotate(-90)" '
        'text-anchor="middle">Reject rate (%)</text></g><g class="axis x-axis">'
    )
    for tick in _time_ticks(first, last):
        at = x(tick)
        parts.append(f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{TOP + plot_h}" y2="{TOP + plot_h + 5}"/>')
        parts.append(
            f'<text class="tick" x="{at:.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">'
            f"{tick:%b %d %H:%M}</text>"
        )
    parts.append(
        f'<text class="axis-title" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" '
        'text-anchor="middle">Started (UTC)</text></g>'
    )
    for name in names:
        mine = sorted((p for p in points if p[0] == name), key=lambda p: p[1])
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for _, t, v in mine)
        parts.append(f'<g class="series" fill="{colour[name]}">')
        if len(mine) > 1:
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour[name]}" stroke-width="2"/>')
        for _, t, v in mine:
            tip = f"Connection: {name}\nStarted (UTC): {t:%Y-%m-%d %H:%M:%S}\nReject rate (%): {v:.2f}"
            at = f'cx="{x(t):.1f}" cy="{y(v):.1f}"'
            parts.append(f'<circle {at} r="4"><title>{_text(tip)}</title></circle>')
        parts.append("</g>")
    parts.append("</svg>")
    legend = "".join(
        f'<span><i class="swatch" style="background:{colour[n]}"></i>{_text(n)}</span>' for n in names
    )
    return f'{STYLE}<div class="cb-trend">{"".join(parts)}<div class="legend">{legend}</div></div>'
