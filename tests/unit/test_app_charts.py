"""The app's bar charts, HTML drawn on the server (app_pages/_charts.py, issue 13: Vega's
JavaScript cost a new session ~0.4 s on Call data): every call status in the legend in its
fixed colour, a slot per day, bars in proportion, the data's order or the largest first, media
partners told apart, and every partner-chosen text escaped."""

from __future__ import annotations

import datetime as dt
import re

import pyarrow as pa
import pytest
from helpers.html_fragment import Parsed

from app_pages import _charts
from connectbatch.schemas import CALL_STATUSES

PER_DAY = pa.table(
    {"day": [dt.date(2026, 12, 1), dt.date(2026, 12, 1), dt.date(2026, 12, 3)],
     "status": ["ANSWER", None, "CANCEL"], "calls": [5, 1, 2]}
)  # fmt: skip
TOP = pa.table({"Media partner": ["Other", "Leadwave (98765)"], "Calls": [3, 7]})
BUCKETS = pa.table({"bucket": ["0-30 s", "30-60 s", "1-5 min"], "calls": [2, 0, 9]})


def style(attrs: dict[str, str], name: str) -> float:
    """A percentage of the element's inline style ("height:12.500%" -> 12.5)."""
    found = re.search(rf"(?:^|;){name}:([\d.]+)%", attrs["style"])
    assert found, (name, attrs["style"])
    return float(found.group(1))


def test_the_status_legend_lists_every_status_in_fixed_distinct_colours() -> None:
    html = Parsed(_charts.calls_per_day_by_status(PER_DAY).html)
    legend = [
        (text, a)
        for tag, a, text in html.elements
        if tag == "span" and text and "swatch" not in a.get("class", "")
    ]
    swatches = [a["style"] for tag, a, _ in html.elements if "swatch" in a.get("class", "")]
    names = [t for t, _ in legend if t in CALL_STATUSES or t == "(none)"]
    assert names == [*CALL_STATUSES, "(none)"]  # a status without calls stays listed
    colours = [s.removeprefix("background:") for s in swatches]
    assert colours[: len(CALL_STATUSES)] == [_charts.STATUS_COLOURS[s] for s in CALL_STATUSES]
    assert len(set(colours[: len(CALL_STATUSES)])) == len(CALL_STATUSES)
    assert colours[-1] == _charts.OTHER_COLOUR


def test_a_slot_per_day_from_the_first_to_the_last_and_stacked_bars_in_proportion() -> None:
    html = Parsed(_charts.calls_per_day_by_status(PER_DAY).html)
    bars = [a for a, _ in html.of_class("bar")]
    assert [a["title"] for a in bars] == [  # one bar a day: its statuses in the legend's order
        "Day: 2026-12-01\nANSWER: 5\n(none): 1\nCalls: 6",
        "Day: 2026-12-03\nCANCEL: 2\nCalls: 2",
    ]
    assert style(bars[0], "height") == pytest.approx(3 * style(bars[1], "height"), rel=1e-3)
    assert style(bars[0], "top") + style(bars[0], "height") == pytest.approx(
        style(bars[1], "top") + style(bars[1], "height"), abs=1e-2
    )  # both stand on the axis
    # The statuses are the stops of the bar's gradient, bottom first, in proportion.
    answer, none = _charts.STATUS_COLOURS["ANSWER"], _charts.OTHER_COLOUR
    assert f"linear-gradient(to top, {answer} 0.000% 83.333%, {none} 83.333% 100.000%)" in bars[0]["style"]
    assert bars[1]["style"].endswith(f"background:{_charts.STATUS_COLOURS['CANCEL']}")
    # Dec 02 is an empty slot between them: the second bar is two slots to the right.
    width = style(bars[0], "width") / 0.8
    assert style(bars[1], "left") - style(bars[0], "left") == pytest.approx(2 * width, rel=1e-3)
    assert [t for _, t in html.of_class("tick")] == ["Dec 01", "Dec 02", "Dec 03"]


def test_days_given_as_moments_are_the_same_days_and_long_ranges_get_few_labels() -> None:
    moments = PER_DAY.set_column(0, "day", PER_DAY.column("day").cast(pa.timestamp("ms")))
    assert _charts.calls_per_day_by_status(moments).html == _charts.calls_per_day_by_status(PER_DAY).html
    days = [dt.date(2025, 11, 20) + dt.timedelta(days=k) for k in range(400)]
    long = pa.table({"day": days, "rows": [1] * 400})
    html = Parsed(_charts.bars(long, "day", "rows", value_title="Clicks", temporal=True).html)
    ticks = [t for _, t in html.of_class("tick")]
    assert 2 <= len(ticks) <= _charts.TICKS_X and ticks[0] == "2025-11-20"  # the year: it changes
    assert len(html.of_class("bar")) == 400


def test_bars_keep_the_data_order_unless_the_largest_come_first() -> None:
    html = Parsed(_charts.durations(BUCKETS).html)
    assert [t for _, t in html.of_class("tick")] == ["0-30 s", "30-60 s", "1-5 min"]
    assert [a["title"] for a, _ in html.of_class("bar")] == [
        "0-30 s\nCalls: 2",
        "1-5 min\nCalls: 9",
    ]  # no 0 box
    top = pa.table({"value": ["b", "a", "c"], "rows": [1, 5, 3]})
    across = Parsed(_charts.bars(top, "value", "rows", horizontal=True, most_first=True).html)
    assert [t for _, t in across.of_class("name")] == ["a", "c", "b"]
    assert [t for _, t in across.of_class("value")] == ["5", "3", "1"]


def test_media_partners_with_one_long_name_get_distinct_labels_and_the_whole_name_on_hover() -> None:
    """Three MediaIds of one publisher read "Leadwave Media …" alike when the axis cut the
    labels: each label keeps its MediaId and differs; the tooltip has the whole name."""
    long = "Leadwave Media Partners International Holdings"
    names = [f"{long} ({media_id})" for media_id in (98765, 98766, 98770)] + ["Leadwave Media (98771)"]
    html = Parsed(_charts.top_media(pa.table({"Media partner": names, "Calls": [9, 7, 5, 2]})).html)
    labels = [t for _, t in html.of_class("name")]
    assert len(set(labels)) == len(names)
    assert [label.rsplit(" ", 1)[1] for label in labels] == ["(98765)", "(98766)", "(98770)", "(98771)"]
    assert labels[3] == "Leadwave Media (98771)"  # short enough: as the store named it
    assert all(label.startswith("Leadwave Media Partners") for label in labels[:3])
    assert all(len(label) <= _charts.LABEL_CHARS for label in labels)
    assert [a["title"].split("\n")[0] for a, _ in html.of_class("name")] == [
        f"Media partner: {n}" for n in names
    ]
    widths = [style(a, "width") for tag, a, _ in html.elements if tag == "i" and "title" in a]
    assert widths[0] == pytest.approx(100) and widths[3] == pytest.approx(100 * 2 / 9, rel=1e-3)


def test_labels_that_would_still_match_after_the_cut_are_numbered() -> None:
    name = "A media partner without a MediaId but with a long name"
    assert _charts.short_labels([name + " one", name + " two"], 20) == [
        "A media partner wit…",
        "A media partner wit… #2",
    ]


def test_partner_chosen_text_stays_text_everywhere() -> None:
    hostile = '<img src=x onerror=alert(1)> "q" :red[x] & \x1b'
    charts = [
        _charts.calls_per_day_by_status(
            pa.table({"day": [dt.date(2026, 12, 1)], "status": [hostile], "calls": [1]})
        ),
        _charts.top_media(pa.table({"Media partner": [hostile], "Calls": [1]})),
        _charts.bars(pa.table({"value": [hostile], "rows": [2]}), "value", "rows"),
    ]
    for chart in charts:
        assert "<img" not in chart.html and "&lt;img" in chart.html
        html = Parsed(chart.html)
        texts = [t for _, _, t in html.elements] + [a.get("title", "") for _, a, _ in html.elements]
        assert any("<img src=x onerror=alert(1)>" in t for t in texts)
        assert not any(":red[" in t for t in texts)  # Streamlit's colour syntax broken (html_text)
        assert not any("\x1b" in t for t in texts)  # a control character shown as an escape


def test_nothing_to_show_is_said_and_numbers_read_as_people_write_them() -> None:
    empty = pa.table(
        {
            "day": pa.array([], pa.date32()),
            "status": pa.array([], pa.string()),
            "calls": pa.array([], pa.int64()),
        }
    )
    assert "Nothing to show." in _charts.calls_per_day_by_status(empty).html
    assert "Nothing to show." in _charts.top_media(pa.table({"Media partner": [], "Calls": []})).html
    assert [_charts.number(v) for v in (1234567, 12.0, 2.5, 0)] == ["1,234,567", "12", "2.50", "0"]
    html = Parsed(_charts.durations(pa.table({"bucket": ["a"], "calls": [1]})).html)
    assert [t for _, t in html.of_class("ylabel")] == ["0", "1", "2", "3", "4", "5"]  # whole calls


def test_a_row_without_a_day_is_left_out_of_the_days() -> None:
    days = pa.array([dt.date(2026, 12, 1), None], pa.date32())
    per_day = pa.table({"day": days, "status": ["ANSWER", "ANSWER"], "calls": [2, 5]})
    html = Parsed(_charts.calls_per_day_by_status(per_day).html)
    assert [a["title"] for a, _ in html.of_class("bar")] == ["Day: 2026-12-01\nANSWER: 2\nCalls: 2"]
    rows = Parsed(_charts.bars(pa.table({"day": days, "rows": [2, 5]}), "day", "rows", temporal=True).html)
    assert [a["title"] for a, _ in rows.of_class("bar")] == ["Day: 2026-12-01\nrows: 2"]
    nothing = pa.table({"day": pa.array([None], pa.date32()), "rows": [1]})
    assert "Nothing to show." in _charts.bars(nothing, "day", "rows", temporal=True).html


def test_a_stray_date_decades_away_does_not_make_a_slot_of_every_day_between() -> None:
    days = [dt.date(1970, 1, 1), dt.date(2026, 12, 1), dt.date(2026, 12, 3)]
    html = Parsed(_charts.bars(pa.table({"day": days, "rows": [1, 2, 3]}), "day", "rows", temporal=True).html)
    bars = [a for a, _ in html.of_class("bar")]
    assert [a["title"].split("\n")[0] for a in bars] == [
        "Day: 1970-01-01",
        "Day: 2026-12-01",
        "Day: 2026-12-03",
    ]
    assert style(bars[0], "width") == pytest.approx(80 / 3 * (640 - 66) / 640, rel=1e-3)  # three slots
