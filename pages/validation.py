"""Validation: Runs with failed or warning expectations, rejects, release or discard quarantined batches, reject-rate trend."""

from __future__ import annotations

import streamlit as st

st.title("Validation")
st.info("This screen is being built.")
