"""The app's charts are Vega-Lite specifications written out (app_pages/_charts.py, issue 13:
Altair checked each one against the schema on every page view). They must stay valid: each is
checked here against the Vega-Lite schema Altair ships, with its data."""

from __future__ import annotations

import datetime as dt
from typing import Any

import altair as alt
import pyarrow as pa
import pytest

from app_pages import _charts

PER_DAY = pa.table(
    {"day": [dt.date(2026, 12, 1), dt.date(2026, 12, 2)], "status": ["ANSWER", None], "calls": [5, 1]}
)
TOP = pa.table({"Media partner": ["Leadwave (98765)", "Other"], "Calls": [7, 3]})
BUCKETS = pa.table({"bucket": ["0-30 s", "30-60 s", "1-5 min"], "calls": [2, 0, 9]})


def charts() -> list[_charts.Chart]:
    return [
        _charts.calls_per_day_by_status(PER_DAY),
        _charts.top_media(TOP),
        _charts.durations(BUCKETS),
        _charts.bars(pa.table({"day": [dt.date(2026, 12, 1)], "rows": [4]}), "day", "rows", temporal=True),
    ]


@pytest.mark.parametrize("chart", charts(), ids=lambda c: str(c.spec["mark"]))
def test_every_chart_is_valid_vega_lite_over_its_own_columns(chart: _charts.Chart) -> None:
    alt.Chart.from_dict({**chart.spec, "data": {"values": []}}, validate=True)
    columns = set(chart.data.column_names if isinstance(chart.data, pa.Table) else chart.data.columns)
    fields = {e["field"] for e in chart.spec["encoding"].values() if isinstance(e, dict)}
    fields |= {t["field"] for t in chart.spec["encoding"]["tooltip"]}
    assert fields <= columns


def test_days_reach_the_browser_as_moments_and_a_missing_status_is_named() -> None:
    data: Any = _charts.calls_per_day_by_status(PER_DAY).data
    assert pa.types.is_timestamp(data.schema.field("day").type)
    assert data.column("status").to_pylist() == ["ANSWER", "(none)"]


def test_bars_keep_the_data_order_unless_the_largest_come_first() -> None:
    assert _charts.durations(BUCKETS).spec["encoding"]["x"]["sort"] is None
    top = _charts.top_media(TOP).spec["encoding"]
    assert top["y"]["sort"] == "-x" and top["y"]["field"] == "Media partner"
    assert top["x"]["title"] == "Calls" and top["y"]["title"] == ""


def test_media_partners_with_one_long_name_get_distinct_labels_drawn_whole() -> None:
    """Three MediaIds of one publisher read "Leadwave Media …" alike when Streamlit's theme cut
    the axis labels at 100 px: each label keeps its MediaId, fits the axis and differs."""
    long = "Leadwave Media Partners International Holdings"
    names = [f"{long} ({media_id})" for media_id in (98765, 98766, 98770)] + ["Leadwave Media (98771)"]
    chart = _charts.top_media(pa.table({"Media partner": names, "Calls": [9, 7, 5, 2]}))

    labels = chart.data.column("Media partner").to_pylist()
    assert len(set(labels)) == len(names)
    assert [label.rsplit(" ", 1)[1] for label in labels] == ["(98765)", "(98766)", "(98770)", "(98771)"]
    assert labels[3] == "Leadwave Media (98771)"  # short enough: as the store named it
    assert all(label.startswith("Leadwave Media Partners") for label in labels[:3])
    axis = chart.spec["encoding"]["y"]["axis"]
    assert max(len(label) for label in labels) * 8 <= axis["labelLimit"]  # ~8 px a character
    tooltip = chart.spec["encoding"]["tooltip"][0]
    assert chart.data.column(tooltip["field"]).to_pylist() == names  # the whole name on hover


def test_labels_that_would_still_match_after_the_cut_are_numbered() -> None:
    name = "A media partner without a MediaId but with a long name"
    assert _charts.short_labels([name + " one", name + " two"], 20) == [
        "A media partner wit…",
        "A media partner wit… #2",
    ]
