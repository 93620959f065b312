"""ConnectBatch web app: the router.

Only page setup, the shared sidebar and the list of screens live here; each screen is one file
in pages/. Run it with `make run` (or `streamlit run streamlit_app.py`).
"""

import streamlit as st

from connectbatch import __version__, webapp

st.set_page_config(page_title="ConnectBatch", page_icon=":material/inbox:", layout="wide")

PAGES = {
    "Files": [
        st.Page(
            "pages/parse_preview.py",
            title="File format & dry run",
            icon=":material/fact_check:",
            url_path="file-format",
            default=True,
        ),
    ],
}

page = st.navigation(PAGES)
_engine, problem = webapp.engine()
with st.sidebar:
    st.caption(f"ConnectBatch {__version__}")
    if problem:
        st.warning(problem)
page.run()
