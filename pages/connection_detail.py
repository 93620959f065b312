"""Connection: Edit a connection, its run history with drill-down, and its credentials."""

from __future__ import annotations

import streamlit as st

st.title("Connection")
st.info("This screen is being built.")
