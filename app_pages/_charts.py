"""The app's bar charts, drawn on the server as plain HTML (`st.html`), like the Validation
page's reject-rate trend (app_pages/_trend.py).

* Calls per day by status: stacked bars, one slot per day from the first to the last (a day
  without calls is a gap), every call status in the legend, always in the same colour, so a
  status with no calls is not silently dropped and colours do not move between days.
* Top media partners and a browse page's top values: bars across, the most first; a media
  partner's label is shortened so that each stays distinct (its MediaId kept), the tooltip has
  the whole name.
* The duration distribution and a browse page's rows per day: bars in the data's order.

Why not Vega-Lite, as before (issue 13: page ready in a new session): the browser loaded and
compiled Vega's ~1 MB of JavaScript for the first chart of a session, and drew each chart with
it: Call data opened 0.4 s sooner in a new session without its three charts (A/B, 10 sessions
each), and on 1M call rows it took 1.10 s from the menu, over half of it drawing. Bars are
boxes placed in percent of a box of fixed aspect ratio (so they scale together), one box a bar
(a day's statuses are the stops of its gradient); each bar's tooltip is its `title`. Every
label and tooltip is text chosen by partners (statuses, media partners, values) and is escaped
(`escaping.html_text`); colours are only ever this module's constants.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import streamlit as st

from app_pages._trend import PALETTE, legend_html, nice_ceiling, tip_text
from connectbatch.escaping import html_text
from connectbatch.schemas import CALL_STATUSES

# One fixed colour per call status: answered green, the failures warm, the rest neutral.
STATUS_COLOURS = {
    "ANSWER": "#2e7d32",
    "NO_TRANSFER_ATTEMPT": "#1e88e5",
    "IVR_DROPOFF": "#8e24aa",
    "CANCEL": "#fb8c00",
    "INCOMPLETE": "#fdd835",
    "CONGESTION": "#6d4c41",
    "FAILURE": "#e53935",
    "UNKNOWN_CALLERID": "#757575",
}
OTHER_COLOUR = "#bdbdbd"
BAR_COLOUR = PALETTE[0]
NO_STATUS = "(none)"
# A media partner's label: at most LABEL_CHARS characters, drawn whole (up to 260 px wide).
LABEL_CHARS = 32
MEDIA_ID = re.compile(r"(.*\S)\s*(\(\d+\))")  # "Name (98765)", as the call store labels them
WIDTH, HEIGHT = 640, 300  # the columns' box; positions are written in percent of it
LEFT, RIGHT, TOP, BOTTOM = 56, 10, 10, 30
TICKS_X, TICKS_Y = 6, 5
MAX_DAY_SLOTS = 3_660  # ten years of days, each its own slot; beyond, the days present only
STYLE = """<style>
.cb-chart { font: 11px sans-serif; color: #555; }
.cb-chart .plot { position: relative; width: 100%; max-height: 320px; }
.cb-chart .plot > * { position: absolute; }
.cb-chart .grid { height: 1px; background: #e6e6e6; }
.cb-chart .ylabel { transform: translate(-100%, -50%); padding-right: 6px; }
.cb-chart .tick { transform: translateX(-50%); white-space: nowrap; }
.cb-chart .ytitle { transform: translate(-50%, -50%) rotate(-90deg); white-space: nowrap; }
.cb-chart .bar:hover, .cb-chart .across i:hover { filter: brightness(0.85); }
.cb-chart .across { display: grid; grid-template-columns: minmax(0, max-content) 1fr max-content;
  gap: 3px 8px; align-items: center; }
.cb-chart .across .name { max-width: 260px; overflow-wrap: anywhere; text-align: right; }
.cb-chart .across .track { height: 14px; }
.cb-chart .across i { display: block; height: 100%; }
.cb-chart .vtitle { margin-top: 4px; text-align: center; }
.cb-chart .legend { display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 0.85rem; margin-top: 4px; }
.cb-chart .legend span { overflow-wrap: anywhere; }
.cb-chart .swatch { display: inline-block; width: 10px; height: 10px; margin-right: 5px; }
.cb-chart .empty { color: #888; }
</style>"""


@dataclass(frozen=True)
class Chart:
    """One chart as an HTML fragment for `st.html`."""

    html: str


@dataclass(frozen=True)
class Stack:
    """One bar: its parts as (value, colour), bottom first, and its tooltip (plain text, lines
    split by "\\n"). One box whatever the parts: they are stops of its background's gradient,
    so a day of eight statuses is one element, not eight (fewer to sanitise and lay out)."""

    parts: Sequence[tuple[float, str]]
    tip: str


def draw(chart: Chart) -> None:
    st.html(chart.html)


def number(value: Any) -> str:
    """A bar's value as people read it: whole numbers with thousands separators."""
    if isinstance(value, int | Decimal) and value == int(value):
        return f"{int(value):,}"
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    return f"{float(value):,.2f}"


def _wrap(body: str, label: str) -> Chart:
    return Chart(f'{STYLE}<div class="cb-chart" role="img" aria-label="{html_text(label)}">{body}</div>')


def columns(
    slots: Sequence[str],
    stacks: Sequence[Stack],
    *,
    value_title: str,
    label: str,
    ticks: Sequence[int] | None = None,
    legend: Sequence[tuple[str, str]] = (),
) -> Chart:
    """Bars up, one slot per label of `slots` (its stack), the labels of the slots in `ticks`
    (all of them by default) under the axis."""
    if not slots:
        return _wrap('<div class="empty">Nothing to show.</div>', label)
    totals = [sum(max(value, 0) for value, _ in stack.parts) for stack in stacks]
    whole = all(float(value).is_integer() for stack in stacks for value, _ in stack.parts)
    top = nice_ceiling(max([*totals, 5 if whole else 0]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot_w = plot_w / len(slots)

    def y(value: float) -> float:
        return TOP + plot_h - value / top * plot_h

    def pct(value: float, of: float) -> str:
        return f"{value / of * 100:.3f}%"

    parts = [f'<div class="plot" style="aspect-ratio:{WIDTH}/{HEIGHT}">']
    for i in range(TICKS_Y + 1):
        value = top * i / TICKS_Y
        where = f"left:{pct(LEFT, WIDTH)};top:{pct(y(value), HEIGHT)}"
        parts.append(f'<div class="grid" style="{where};width:{pct(plot_w, WIDTH)}"></div>')
        parts.append(f'<span class="ylabel" style="{where}">{number(value)}</span>')
    parts.append(
        f'<span class="ytitle" style="left:{pct(14, WIDTH)};top:{pct(TOP + plot_h / 2, HEIGHT)}">'
        f"{html_text(value_title)}</span>"
    )
    for i, (stack, total) in enumerate(zip(stacks, totals, strict=True)):
        if total <= 0:
            continue
        stops, below = [], 0.0
        for value, colour in stack.parts:
            if value > 0:
                stops.append(f"{colour} {below:.3f}% {below + value / total * 100:.3f}%")
                below += value / total * 100
        fill = stops[0].split()[0] if len(stops) == 1 else f"linear-gradient(to top, {', '.join(stops)})"
        style = (
            f"left:{pct(LEFT + i * slot_w + slot_w * 0.1, WIDTH)};width:{pct(slot_w * 0.8, WIDTH)};"
            f"top:{pct(y(total), HEIGHT)};height:{pct(total / top * plot_h, HEIGHT)};background:{fill}"
        )
        parts.append(f'<div class="bar" title="{tip_text(stack.tip)}" style="{style}"></div>')
    for i in range(len(slots)) if ticks is None else ticks:
        centre = LEFT + (i + 0.5) * slot_w
        parts.append(
            f'<span class="tick" style="left:{pct(centre, WIDTH)};top:{pct(TOP + plot_h + 6, HEIGHT)}">'
            f"{html_text(slots[i])}</span>"
        )
    parts.append("</div>")
    return _wrap("".join(parts) + (legend_html(legend) if legend else ""), label)


def across(items: Sequence[tuple[str, float, str]], *, value_title: str, label: str) -> Chart:
    """Bars across, one row per (label, value, tooltip), in the given order, each value
    written at its bar's end."""
    if not items:
        return _wrap('<div class="empty">Nothing to show.</div>', label)
    top = max(max(value for _, value, _ in items), 0) or 1
    rows = []
    for name, value, tip in items:
        tip_html = tip_text(tip)
        rows.append(
            f'<span class="name" title="{tip_html}">{html_text(name)}</span>'
            f'<span class="track"><i title="{tip_html}" style="width:{max(value, 0) / top * 100:.3f}%;'
            f'{"min-width:1px;" if value > 0 else ""}background:{BAR_COLOUR}"></i></span>'
            f'<span class="value">{number(value)}</span>'
        )
    title = f'<div class="vtitle">{html_text(value_title)}</div>' if value_title else ""
    return _wrap(f'<div class="across">{"".join(rows)}</div>{title}', label)


def _days(column: pa.ChunkedArray | pa.Array) -> list[dt.date]:
    """The column's days as dates (a date, or a moment whose UTC day it is)."""
    values = column.to_pylist()
    return [v.date() if isinstance(v, dt.datetime) else v for v in values]


def _day_slots(days: Sequence[dt.date]) -> tuple[list[dt.date], list[str], list[int]]:
    """Every day from the first to the last, its label, and the at most TICKS_X slots labelled.
    Over MAX_DAY_SLOTS days (a stray date decades away) only the days present get a slot: the
    chart stays bounded by the data, not by the dates' distance."""
    first, last = min(days), max(days)
    if (last - first).days < MAX_DAY_SLOTS:
        every = [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]
    else:
        every = sorted(set(days))
    form = "%b %d" if first.year == last.year else "%Y-%m-%d"
    step = max(1, math.ceil(len(every) / TICKS_X))
    return every, [d.strftime(form) for d in every], list(range(0, len(every), step))


def status_domain(present: list[Any]) -> tuple[list[str], list[str]]:
    """Every known status (and any other the data holds), with its colour."""
    domain = list(CALL_STATUSES) + sorted({str(s) for s in present if s is not None} - set(CALL_STATUSES))
    return domain, [STATUS_COLOURS.get(s, OTHER_COLOUR) for s in domain]


def calls_per_day_by_status(per_day: pa.Table) -> Chart:
    """Stacked bars of calls per day, coloured by status, the legend with every status."""
    label = "Calls per day by status"
    per_day = per_day.filter(pc.is_valid(per_day.column("day")))  # a row without a day has no slot
    if per_day.num_rows == 0:
        return columns([], [], value_title="Calls", label=label)
    statuses = pc.fill_null(per_day.column("status").cast(pa.string()), NO_STATUS).to_pylist()
    days = _days(per_day.column("day"))
    calls = [c or 0 for c in per_day.column("calls").to_pylist()]
    domain, colours = status_domain(statuses)
    colour = dict(zip(domain, colours, strict=True))
    order = {status: i for i, status in enumerate(domain)}
    every, labels, ticks = _day_slots(days)
    by_day: dict[dt.date, list[tuple[str, float]]] = {}
    for day, status, count in sorted(zip(days, statuses, calls, strict=True), key=lambda r: order[r[1]]):
        by_day.setdefault(day, []).append((status, count))
    stacks = []
    for day in every:
        counts = by_day.get(day, [])
        lines = [f"{status}: {number(count)}" for status, count in counts]
        tip = "\n".join([f"Day: {day:%Y-%m-%d}", *lines, f"Calls: {number(sum(c for _, c in counts))}"])
        stacks.append(Stack([(count, colour[status]) for status, count in counts], tip))
    return columns(labels, stacks, value_title="Calls", label=label, ticks=ticks,
                   legend=list(zip(domain, colours, strict=True)))  # fmt: skip


def bars(
    data: pa.Table,
    category: str,
    value: str,
    *,
    value_title: str = "",
    horizontal: bool = False,
    most_first: bool = False,
    temporal: bool = False,
) -> Chart:
    """Bars of `value` per `category`: in the data's order (or the largest value first),
    up or (horizontal) across; `temporal`: one slot per day of the category's range."""
    if temporal:
        data = data.filter(pc.is_valid(data.column(category)))  # a row without a day has no slot
    names = data.column(category).to_pylist()
    values = [v or 0 for v in data.column(value).to_pylist()]
    label = f"{value_title or value} per {category}"
    if temporal and names:
        days = _days(data.column(category))
        every, labels, ticks = _day_slots(days)
        amounts: dict[dt.date, float] = {}
        for day, amount in zip(days, values, strict=True):
            amounts[day] = amounts.get(day, 0) + amount
        stacks = [
            Stack([(amounts.get(day, 0), BAR_COLOUR)], f"Day: {day:%Y-%m-%d}\n{value_title or value}: "
                  f"{number(amounts.get(day, 0))}")
            for day in every
        ]  # fmt: skip
        return columns(labels, stacks, value_title=value_title, label=label, ticks=ticks)
    pairs = [(str(n), v) for n, v in zip(names, values, strict=True)]
    if most_first:
        pairs.sort(key=lambda p: -p[1])
    tips = [f"{n}\n{value_title or value}: {number(v)}" for n, v in pairs]
    if horizontal:
        return across([(n, v, t) for (n, v), t in zip(pairs, tips, strict=True)],
                      value_title=value_title, label=label)  # fmt: skip
    bars_up = [Stack([(v, BAR_COLOUR)], t) for (_, v), t in zip(pairs, tips, strict=True)]
    return columns([n for n, _ in pairs], bars_up, value_title=value_title, label=label)


def short_labels(names: list[str], size: int = LABEL_CHARS) -> list[str]:
    """Each name cut to `size` characters, told apart: a cut keeps the trailing "(MediaId)"
    and drops the middle, so "Leadwave Media Partners International (98765)" and its sister
    ids do not all read "Leadwave Media …"; two cuts that still match get " #2", " #3"."""
    labels: list[str] = []
    for name in names:
        label = name
        if len(name) > size:
            found = MEDIA_ID.fullmatch(name)
            head, tail = (found.group(1), found.group(2)) if found else (name, "")
            tail = f" {tail}" if tail else ""
            label = head[: max(size - len(tail) - 1, 1)].rstrip() + "…" + tail
        taken, n = label, 1
        while taken in labels:
            n += 1
            taken = f"{label} #{n}"
        labels.append(taken)
    return labels


def top_media(table: pa.Table) -> Chart:
    """Bars across of calls per media partner, the most calls on top, each partner's distinct
    short label drawn whole; the tooltip has the whole name."""
    names = [str(n) for n in table.column("Media partner").to_pylist()]
    calls = [c or 0 for c in table.column("Calls").to_pylist()]
    rows = sorted(zip(short_labels(names), calls, names, strict=True), key=lambda r: -r[1])
    items = [(short, count, f"Media partner: {name}\nCalls: {number(count)}") for short, count, name in rows]
    return across(items, value_title="Calls", label="Top media partners")


def durations(table: pa.Table) -> Chart:
    """Bars of calls per duration bucket, in the buckets' own order."""
    return bars(table, "bucket", "calls", value_title="Calls")
