"""Create connection: The Connector wizard: name and direction, data type, method and methodology, credentials, then provisioned credentials shown once."""

from __future__ import annotations

import streamlit as st

st.title("Create connection")
st.info("This screen is being built.")
