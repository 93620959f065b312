"""ConnectBatch web app: the server. `streamlit run streamlit_asgi.py` (make run) serves the
app (streamlit_app.py, the router) with Streamlit's own server and one addition: the root and a
screen's own address (/validation, ...) answer with Streamlit's index.html naming the backend
and the modules of the login form's field (connectbatch.webapp.index_html), so a bookmark or a
reload of a screen connects at once and draws the login form without waiting for its code.
Without it Streamlit's browser code first asks /validation/_stcore/health (404) and tries the
server's root 100 ms later, in every new browser session opened on a screen's address (issue
13: page-ready time in a new session). And /_session, where a logged-in page's browser trades
its one-use token for the login's cookie (connectbatch/services/sessions.py), so that a reload
or another tab stays logged in. Every answer may be framed by the app's own pages only
(webapp.FrameGuard). Streamlit's own browser files under /static/ are answered from memory
(connectbatch.static_files: its handler took ~1.6 ms a file, ~120 files a new session). Its
socket sends small answers at once (connectbatch.app_socket: without
it each waited 40 ms for the browser's delayed acknowledgement).
"""

from __future__ import annotations

from starlette.middleware import Middleware
from streamlit.starlette import App

from app_pages._menu import url_paths
from connectbatch import app_socket, static_files, webapp

app_socket.enable()  # uvicorn imports this file before it accepts a connection
app = App(
    "streamlit_app.py",
    routes=webapp.page_routes(url_paths()) + webapp.session_routes(webapp.operator_services),
    middleware=[Middleware(webapp.FrameGuard), Middleware(static_files.StaticFromMemory)],
)
