"""Delivery calendar (issue 12, part 5): expected vs received files per inbound connection
per day over the last and next weeks, filtered by partner; each connection's expected
cadence, the cadence learned from its files (a suggestion an analyst may apply) and its open
alerts (late, missing, volume drift, reject spike).

A cell shows the day's expected file(s) and what became of them: received on time, late,
missing, overdue (due, nothing yet), pending (not due yet), and files nobody expected.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import streamlit as st

from app_pages import _partner_filter, _ui
from connectbatch import webapp
from connectbatch.delivery.calendar import Day
from connectbatch.escaping import markdown_text, visible
from connectbatch.services import Services
from connectbatch.services.delivery import DeliveryStatus

# Cell text and colour per day state (SlotState values, "extra", "received" without a cadence).
CELLS: dict[str, tuple[str, str]] = {
    "received": ("✓ received", "#c8e6c9"),
    "late": ("⏰ late", "#ffe0b2"),
    "missing": ("✗ missing", "#ffcdd2"),
    "overdue": ("… overdue", "#ffecb3"),
    "pending": ("○ expected", "#eceff1"),
    "extra": ("+ unexpected", "#bbdefb"),
}


def cell(day: Day) -> str:
    """A day's text: its state, plus files nobody expected ("+1")."""
    text = CELLS.get(day.state, ("", ""))[0]
    if day.extra and day.state != "extra":
        text += f" +{day.extra}"
    return text


def colour(text: str) -> str:
    for label, shade in CELLS.values():
        if text and text.startswith(label.split(" ")[0]):
            return f"background-color: {shade}"
    return ""


def grid(rows: list[tuple[str, list[Day]]]) -> Any:
    """The calendar as a styled table: one row per connection, one column per day."""
    import pandas as pd

    if not rows:
        return pd.DataFrame()
    columns = [f"{d.day:%a %m-%d}" for d in rows[0][1]]
    frame = pd.DataFrame([[cell(d) for d in days] for _, days in rows], columns=columns)
    frame.insert(0, "Connection", [visible(name) for name, _ in rows])
    return frame.style.map(colour, subset=columns)


def statuses(services: Services, ids: list[int]) -> dict[int, DeliveryStatus]:
    """Each connection's delivery status, read once per page view: the expectations table
    and the learned-cadence picker share it (each read scans the connection's recent files)."""
    return {i: services.delivery_status(i) for i in ids}


def expectations(found: dict[int, DeliveryStatus]) -> list[dict[str, Any]]:
    out = []
    for s in found.values():
        c = s.connection
        out.append(
            {
                "Connection": visible(c.name),
                "Expected": f"{c.expect} (+{c.expect_grace_minutes} min)" if c.expect else "",
                "Learned": f"{s.suggestion.expect} ({s.suggestion.confidence:.0%})" if s.suggestion else "",
                "Usual rows": s.usual_rows,
                "Tolerance": f"±{c.volume_tolerance} %" if c.volume_tolerance is not None else "",
                "Open alerts": len(s.open_alerts),
                "Alerts to": visible(s.owner or ""),
            }
        )
    return out


def apply_suggestion(services: Services, found: dict[int, DeliveryStatus], names: dict[int, str]) -> None:
    """Set a connection's cadence to the one learned from its files (an analyst's decision)."""
    suggested = {i: s.suggestion for i, s in found.items() if s.suggestion is not None}
    if not suggested:
        return
    pick, apply = st.columns([3, 1], vertical_alignment="bottom")
    chosen = pick.selectbox(
        "Use the learned cadence of", list(suggested), key="delivery_apply_pick",
        format_func=lambda i: f"{visible(names[i])}: {suggested[i].expect} ({suggested[i].confidence:.0%})",
    )  # fmt: skip
    if apply.button("Use it", key="delivery_apply") and chosen is not None:
        ok, _ = _ui.safely(
            "Saving the cadence", lambda: services.update_connection(chosen, expect=suggested[chosen].expect)
        )
        if ok:
            _ui.flash(
                "success", f"{markdown_text(names[chosen])} now expects files {suggested[chosen].expect}."
            )
            st.rerun()


def edit_expectation(services: Services, ids: list[int], names: dict[int, str]) -> None:
    """Set or clear a connection's expected cadence, grace, volume tolerance and alert owner."""
    with st.expander("Set a connection's expected delivery"):
        chosen = st.selectbox(
            "Connection", ids, key="delivery_edit_pick", format_func=lambda i: visible(names[i])
        )
        if chosen is None:
            return
        c = services.connection(chosen)
        with st.form(f"delivery_edit_{c.id}"):
            hint = "daily by 06:00, weekdays by 09:00, weekly on mon"
            expect = st.text_input("Expected", c.expect or "", key="delivery_edit_expect", placeholder=hint)
            grace = st.number_input(
                "Grace (minutes)", 0, 7 * 24 * 60, c.expect_grace_minutes, key="delivery_edit_grace"
            )
            tolerance = st.number_input("Volume tolerance (%; 0: not checked)", 0, 1000,
                                        c.volume_tolerance or 0, key="delivery_edit_tolerance")  # fmt: skip
            owner = st.text_input("Alerts go to (empty: the partner's return address)", c.owner_email or "",
                                  key="delivery_edit_owner")  # fmt: skip
            if st.form_submit_button("Save", type="primary"):
                ok, _ = _ui.safely("Saving the expected delivery", lambda: services.update_connection(
                    c.id, expect=expect or None, expect_grace_minutes=int(grace),
                    volume_tolerance=int(tolerance) or None, owner_email=owner or None,
                ))  # fmt: skip
                if ok:
                    _ui.flash("success", f"Saved the expected delivery of {markdown_text(c.name)}.")
                    st.rerun()


def render() -> None:
    st.title("Delivery calendar")
    st.caption(
        "Expected vs received files per connection per day. Set a connection's cadence with "
        "`connectbatch connection edit N --expect 'daily by 06:00' --grace 2h --volume-tolerance 30`, "
        "or use the one learned from its files below."
    )
    _ui.show_flash()
    services = webapp.services()
    top = st.columns([2, 1, 1, 1], vertical_alignment="bottom")
    partners = _partner_filter.choose(services.partner_choices(), "delivery_partners", top[0])
    back = top[1].number_input("Weeks back", 1, 8, 2, key="delivery_back")
    ahead = top[2].number_input("Weeks ahead", 0, 4, 1, key="delivery_ahead")
    if top[3].button("Check now", key="delivery_check", icon=":material/refresh:"):
        _ui.safely("Checking deliveries", services.check_deliveries)
    _ui.delivery_banner()
    today = services.clock().date()
    first, last = today - dt.timedelta(weeks=int(back)), today + dt.timedelta(weeks=int(ahead))
    ok, calendar = _ui.safely("Loading the calendar", lambda: services.delivery_calendar(first, last))
    if not ok or calendar is None:
        return
    shown = [(c, days) for c, days in calendar if not partners or c.partner_id in partners]
    if not shown:
        st.info("No inbound connection" + (" of these partners." if partners else " yet."))
        return
    st.dataframe(grid([(c.name, days) for c, days in shown]), hide_index=True, key="delivery_grid")
    st.caption(" · ".join(label for label, _ in CELLS.values()) + " · +N: files nobody expected that day")
    st.subheader("Expectations")
    ids = [c.id for c, _ in shown]
    found = statuses(services, ids)
    st.dataframe(expectations(found), hide_index=True, key="delivery_expectations")
    apply_suggestion(services, found, {c.id: c.name for c, _ in shown})
    edit_expectation(services, ids, {c.id: c.name for c, _ in shown})


if __name__ == "__main__":
    render()
