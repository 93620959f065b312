"""The app's charts, as Vega-Lite specifications written out (no Altair, no st.bar_chart).

* Calls per day by status: every call status is in the legend, always in the same colour, so
  a status with no calls today is not silently dropped and colours do not move between days.
* Top media partners and the duration distribution: bars, as st.bar_chart drew them; a media
  partner's label is shortened so that each stays distinct (its MediaId kept) and drawn whole.

The Validation page's reject rate per connection is an SVG drawn on the server instead
(app_pages/_trend.py): it was that page's only chart, and Vega's JavaScript cost its new sessions.

Why written out (issue 13): Altair checks a chart against the Vega-Lite JSON schema every time
it is turned into the specification the browser gets, and st.bar_chart builds an Altair chart
and converts its data to pandas first; on Call data that was ~0.1-0.3 s of every view's
server time (three charts). These specifications are fixed, so
the check has nothing to find; tests/unit/test_app_charts.py keeps them valid anyway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import streamlit as st

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
# A media partner's axis label: at most LABEL_CHARS characters, drawn whole in LABEL_LIMIT px
# (Streamlit's theme would cut it at 100 px).
LABEL_CHARS = 32
LABEL_LIMIT = 260
MEDIA_ID = re.compile(r"(.*\S)\s*(\(\d+\))")  # "Name (98765)", as the call store labels them
SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"


@dataclass(frozen=True)
class Chart:
    """A chart's data and its Vega-Lite specification (without the data)."""

    data: Any  # a pyarrow Table or a pandas DataFrame
    spec: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.spec


def draw(chart: Chart) -> None:
    st.vega_lite_chart(chart.data, chart.spec)


def status_domain(present: list[Any]) -> tuple[list[str], list[str]]:
    """Every known status (and any other the data holds), with its colour."""
    domain = list(CALL_STATUSES) + sorted({str(s) for s in present if s is not None} - set(CALL_STATUSES))
    return domain, [STATUS_COLOURS.get(s, OTHER_COLOUR) for s in domain]


def calls_per_day_by_status(per_day: pa.Table) -> Chart:
    """Stacked bars of calls per day, coloured by status, legend with every status."""
    status = pc.fill_null(per_day.column("status").cast(pa.string()), "(none)")
    day = per_day.column("day")
    if pa.types.is_date(day.type):  # a day as a moment: the browser reads timestamps as dates
        day = day.cast(pa.timestamp("ms"))
    data = pa.table({"day": day, "status": status, "calls": per_day.column("calls")})
    domain, colours = status_domain(pc.unique(status).to_pylist())
    spec = {
        "$schema": SCHEMA,
        "mark": {"type": "bar"},
        "encoding": {
            "x": {"field": "day", "type": "temporal", "title": ""},
            "y": {"field": "calls", "type": "quantitative", "title": "Calls"},
            "color": {
                "field": "status",
                "type": "nominal",
                "title": "Status",
                "scale": {"domain": domain, "range": colours},
            },
            "tooltip": [
                {"field": "day", "type": "temporal"},
                {"field": "status", "type": "nominal"},
                {"field": "calls", "type": "quantitative"},
            ],
        },
    }
    return Chart(data, spec)


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
    """Bars of `value` per `category` as st.bar_chart drew them: the category axis untitled,
    in the data's order (or the largest value first), across or (horizontal) down."""
    kind = "temporal" if temporal else "nominal"
    cat: dict[str, Any] = {"field": category, "type": kind, "title": ""}
    if not temporal:
        cat["sort"] = ("-x" if horizontal else "-y") if most_first else None
    if temporal and pa.types.is_date(data.schema.field(category).type):
        data = data.set_column(data.schema.get_field_index(category), category,
                               data.column(category).cast(pa.timestamp("ms")))  # fmt: skip
    val = {"field": value, "type": "quantitative", "title": value_title}
    spec = {
        "$schema": SCHEMA,
        "mark": {"type": "bar"},
        "encoding": {
            "x": val if horizontal else cat,
            "y": cat if horizontal else val,
            "tooltip": [{"field": category, "type": kind}, {"field": value, "type": "quantitative"}],
        },
    }
    return Chart(data, spec)


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
    """Horizontal bars of calls per media partner, the most calls on top. The axis shows each
    partner's distinct short label at full length (Streamlit's theme cuts axis labels at
    100 px, which made a publisher's MediaIds read alike); the tooltip has the whole name."""
    names = [str(n) for n in table.column("Media partner").to_pylist()]
    data = pa.table({"Media partner": short_labels(names), "Name": names, "Calls": table.column("Calls")})
    chart = bars(data, "Media partner", "Calls", value_title="Calls", horizontal=True, most_first=True)
    chart.spec["encoding"]["y"]["axis"] = {"labelLimit": LABEL_LIMIT}
    chart.spec["encoding"]["tooltip"][0] = {"field": "Name", "type": "nominal", "title": "Media partner"}
    return chart


def durations(table: pa.Table) -> Chart:
    """Bars of calls per duration bucket, in the buckets' own order."""
    return bars(table, "bucket", "calls", value_title="Calls")
