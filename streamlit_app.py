"""ConnectBatch web app: the router.

Only page setup, the shared sidebar and the list of screens live here; each screen is one file
in app_pages/ and talks to `connectbatch.webapp.services()` only. Not "pages/": Streamlit would
also read that as an old-style pages folder and break deep links. Run it with `make run`.
"""

import streamlit as st

from connectbatch import __version__, webapp

st.set_page_config(page_title="ConnectBatch", page_icon=":material/inbox:", layout="wide")

PAGES = {
    "Connections": [
        st.Page("app_pages/connections.py", title="Connections", icon=":material/cable:",
                url_path="connections", default=True),
        st.Page("app_pages/connection_wizard.py", title="Create connection", icon=":material/add_link:",
                url_path="create-connection"),
        st.Page("app_pages/connection_detail.py", title="Connection", icon=":material/history:",
                url_path="connection"),
    ],
    "Data quality": [
        st.Page("app_pages/validation.py", title="Validation", icon=":material/rule:", url_path="validation"),
        st.Page("app_pages/parse_preview.py", title="File format & dry run", icon=":material/fact_check:",
                url_path="file-format"),
    ],
    "Partners": [
        st.Page("app_pages/call_data.py", title="Call data", icon=":material/call:", url_path="call-data"),
        st.Page("app_pages/actions.py", title="Pending actions", icon=":material/pending_actions:",
                url_path="actions"),
    ],
}  # fmt: skip

page = st.navigation(PAGES)
_engine, problem = webapp.engine()
with st.sidebar:
    st.caption(f"ConnectBatch {__version__}")
    if problem:
        st.warning(problem)
page.run()
