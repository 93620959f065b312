"""Connections: The list of connections with status and Last Active, filters, search, Run now, and Create Connection."""

from __future__ import annotations

import streamlit as st

st.title("Connections")
st.info("This screen is being built.")
