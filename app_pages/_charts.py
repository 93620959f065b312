"""Charts whose legend and marks must not depend on the data they happen to show.

* Calls per day by status: every call status is in the legend, always in the same colour, so
  a status with no calls today is not silently dropped and colours do not move between days.
* Reject rate per connection: a line with a point at every run, so a connection with one run
  (the usual case at the start) is visible instead of an empty chart.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

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


def status_domain(present: list[Any]) -> tuple[list[str], list[str]]:
    """Every known status (and any other the data holds), with its colour."""
    domain = list(CALL_STATUSES) + sorted({str(s) for s in present if s is not None} - set(CALL_STATUSES))
    return domain, [STATUS_COLOURS.get(s, OTHER_COLOUR) for s in domain]


def calls_per_day_by_status(per_day: Any) -> alt.Chart:
    """Stacked bars of calls per day, coloured by status, legend with every status."""
    frame = per_day.to_pandas() if hasattr(per_day, "to_pandas") else pd.DataFrame(per_day)
    frame = frame.assign(status=frame["status"].fillna("(none)").astype(str))
    domain, colours = status_domain(list(frame["status"].unique()))
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("day:T", title=""),
            y=alt.Y("calls:Q", title="Calls"),
            color=alt.Color("status:N", title="Status", scale=alt.Scale(domain=domain, range=colours)),
            tooltip=["day:T", "status:N", "calls:Q"],
        )
    )


def reject_rate_chart(frame: pd.DataFrame) -> alt.Chart:
    """Reject rate (%) per run over time, one line per connection, a point per run."""
    return (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("Started:T", title="Started"),
            y=alt.Y("Reject rate (%):Q", title="Reject rate (%)"),
            color=alt.Color("Connection:N"),
            tooltip=["Connection:N", "Started:T", alt.Tooltip("Reject rate (%):Q", format=".2f")],
        )
    )
