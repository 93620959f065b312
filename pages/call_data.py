"""Call data: Explorer over ingested call conversions: filters, KPIs, charts, a paged table, CSV download."""

from __future__ import annotations

import streamlit as st

st.title("Call data")
st.info("This screen is being built.")
