"""The Validation page's reject rate per connection, drawn on the server as plain HTML.

Why not a Vega-Lite chart, as it was (the bar charts, app_pages/_charts.py, followed): it was
the page's only chart, and the browser loads and compiles Vega's ~1 MB of JavaScript for the
first chart of a session: ~0.4 s of a new session's Validation page on a 2-core machine (issue
13's goal is 1.5 s), for a line per connection. Why not an SVG: `st.html` sanitises with
DOMPurify's HTML profile, which drops SVG, and `st.markdown` with HTML loads another ~0.15 s of
JavaScript (rehype-raw) in a new session. So the chart is positioned boxes: a box of fixed
aspect ratio, a point and a line segment (a thin box, rotated) placed in percent of it, which
scale together. Every time is UTC by construction, whatever the browser's time zone.

One line per connection with a point per run (a connection with one run is visible too); each
point's tooltip (its `title`) names the connection, the run's start in UTC to the second and
the rate; the time axis reads "Dec 05 22:56". Connection names are chosen by people: every one
is escaped (`escaping.html_text`), in the tooltips and in the legend.
"""

from __future__ import annotations

import datetime as dt
import itertools
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
.cb-trend { font: 11px sans-serif; color: #555; }
.cb-trend .plot { position: relative; width: 100%; }
.cb-trend .plot > * { position: absolute; }
.cb-trend .grid { height: 1px; background: #e6e6e6; }
.cb-trend .ylabel { transform: translate(-100%, -50%); padding-right: 6px; }
.cb-trend .tick { transform: translateX(-50%); white-space: nowrap; }
.cb-trend .mark { width: 1px; height: 5px; background: #ccc; }
.cb-trend .title { white-space: nowrap; }
.cb-trend .ytitle { transform: translate(-50%, -50%) rotate(-90deg); }
.cb-trend .xtitle { transform: translateX(-50%); }
.cb-trend .seg { height: 2px; margin-top: -1px; transform-origin: 0 50%; }
.cb-trend .pt { width: 8px; height: 8px; border-radius: 50%; border: 1px solid #fff;
  transform: translate(-50%, -50%); box-sizing: border-box; }
.cb-trend .pt:hover { width: 12px; height: 12px; }
.cb-trend .legend { display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 0.85rem; margin-top: 4px; }
.cb-trend .legend span { overflow-wrap: anywhere; }
.cb-trend .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 5px; }
</style>"""

Rate = tuple[str, dt.datetime, float]  # (connection, run start, share of rows rejected 0..1)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def nice_ceiling(value: float) -> float:
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


def tip_text(value: str) -> str:
    """Text for the HTML (`escaping.html_text`: a name's control characters made visible); a
    tooltip's own lines are `&#10;`."""
    return "&#10;".join(html_text(line) for line in value.split("\n"))


def reject_rate_html(rates: Sequence[Rate]) -> str:
    """The chart and its legend as one HTML fragment for `st.html` (see the module)."""
    points = [(" ".join(name.split()), _utc(started), rate * 100) for name, started, rate in rates]
    names = sorted({name for name, _, _ in points})
    colour = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
    first = min(p[1] for p in points)
    last = max(p[1] for p in points)
    if last - first < dt.timedelta(minutes=2):  # one moment: a window around it
        first, last = first - dt.timedelta(minutes=1), last + dt.timedelta(minutes=1)
    top = nice_ceiling(max(p[2] for p in points))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span = (last - first).total_seconds()

    # Positions in the units of a WIDTH x HEIGHT box, written in percent of it.
    def x(moment: dt.datetime) -> float:
        return LEFT + (moment - first).total_seconds() / span * plot_w

    def y(percent: float) -> float:
        return TOP + plot_h - percent / top * plot_h

    def at(left: float, top_: float) -> str:
        return f"left:{left / WIDTH * 100:.2f}%;top:{top_ / HEIGHT * 100:.2f}%"

    parts = [
        f'<div class="plot" role="img" aria-label="Reject rate per connection" '
        f'style="aspect-ratio:{WIDTH}/{HEIGHT}">'
    ]
    for i in range(TICKS_Y + 1):
        value = top * i / TICKS_Y
        parts.append(
            f'<div class="grid" style="{at(LEFT, y(value))};width:{plot_w / WIDTH * 100:.2f}%"></div>'
        )
        parts.append(f'<span class="ylabel" style="{at(LEFT, y(value))}">{value:g}</span>')
    parts.append(f'<span class="title ytitle" style="{at(14, TOP + plot_h / 2)}">Reject rate (%)</span>')
    for tick in _time_ticks(first, last):
        parts.append(f'<div class="mark" style="{at(x(tick), TOP + plot_h)}"></div>')
        parts.append(f'<span class="tick" style="{at(x(tick), TOP + plot_h + 8)}">{tick:%b %d %H:%M}</span>')
    parts.append(
        f'<span class="title xtitle" style="{at(LEFT + plot_w / 2, HEIGHT - 16)}">Started (UTC)</span>'
    )
    for name in names:
        mine = sorted((p for p in points if p[0] == name), key=lambda p: p[1])
        ends = [(x(t), y(v)) for _, t, v in mine]
        for (x1, y1), (x2, y2) in itertools.pairwise(ends):
            length = math.hypot(x2 - x1, y2 - y1) / WIDTH * 100
            angle = math.degrees(math.atan2(y2 - y1, x2 - x1))
            parts.append(
                f'<div class="seg" style="{at(x1, y1)};width:{length:.2f}%;'
                f'transform:rotate({angle:.2f}deg);background:{colour[name]}"></div>'
            )
        for _, t, v in mine:
            tip = f"Connection: {name}\nStarted (UTC): {t:%Y-%m-%d %H:%M:%S}\nReject rate (%): {v:.2f}"
            style = f"{at(x(t), y(v))};background:{colour[name]}"
            parts.append(f'<div class="pt" title="{tip_text(tip)}" style="{style}"></div>')
    parts.append("</div>")
    legend = legend_html([(n, colour[n]) for n in names])
    return f'{STYLE}<div class="cb-trend">{"".join(parts)}{legend}</div>'


def legend_html(entries: Sequence[tuple[str, str]]) -> str:
    """A chart's legend: a swatch of each (name, colour) and the name, escaped."""
    spans = "".join(
        f'<span><i class="swatch" style="background:{colour}"></i>{tip_text(name)}</span>'
        for name, colour in entries
    )
    return f'<div class="legend">{spans}</div>'
