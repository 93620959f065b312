"""Pending actions: Pending actions with days to lock; modify or reverse, one or many; audit trail."""

from __future__ import annotations

import streamlit as st

st.title("Pending actions")
st.info("This screen is being built.")
