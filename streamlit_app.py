"""ConnectBatch web app: the router.

Only page setup, the login and the shared sidebar live here; the list of screens is
app_pages/_menu.py, and each screen is one file in app_pages/ that talks to
`connectbatch.webapp.services()` only (bound to the logged-in user). Not "pages/": Streamlit
would also read that as an old-style pages folder and break deep links. `make run` serves it
through streamlit_asgi.py.
"""

import streamlit as st

from app_pages import _auth, _provisioned
from app_pages._menu import LOGIN_PATH, PAGES
from connectbatch import __version__, webapp
from connectbatch.errors import ConfigurationError, ConnectBatchError
from connectbatch.escaping import markdown_text

st.set_page_config(page_title="ConnectBatch", page_icon=":material/inbox:", layout="wide")

try:
    webapp.engine()  # the settings are checked as it starts (Settings.check_usable)
    user = _auth.current_user()
except ConfigurationError as exc:  # a setting an admin must correct: named, not a traceback
    st.error(f"ConnectBatch cannot start: {markdown_text(str(exc))}. Correct it and restart the app.")
    st.stop()
except ConnectBatchError as exc:  # the database busy or unreadable: words, not a traceback
    _auth.store_unavailable(exc)
    st.stop()
if user is None:
    # Only the login form runs; it stands in at every page's address, so that a bookmark
    # opens its page once the person has logged in.
    login = [st.Page(_auth.login_form, title="Log in", icon=":material/login:", url_path=LOGIN_PATH,
                     default=True)]  # fmt: skip
    login += [st.Page(_auth.login_form, title=spec.title, url_path=spec.url_path, visibility="hidden")
              for specs in PAGES.values() for spec in specs]  # fmt: skip
    st.navigation(login, position="hidden").run()
    st.stop()

# The pages the role may use are listed; the others stay registered but hidden, so that a
# deep link to one shows "not allowed" instead of another page.
# The app's root is a hidden start page that opens the role's first screen at its own
# address: a default page is served at "/" only, so "/connections" (the analyst's first
# screen), opened in another tab or from a bookmark, was "Page not found".
start = st.Page(_auth.start, url_path="start", default=True, visibility="hidden")
menu: dict[str, list[st.Page]] = {"": [start]}
allowed: dict[int, bool] = {}
titles: dict[int, str] = {}
first: st.Page | None = None  # the role's first screen
for section, specs in PAGES.items():
    for spec in specs:
        ok = _auth.may_open(user, spec)
        page_obj = st.Page(spec.path, title=spec.title, icon=spec.icon, url_path=spec.url_path,
                           visibility="visible" if ok else "hidden")  # fmt: skip
        menu.setdefault(section if ok else "", []).append(page_obj)
        allowed[id(page_obj)], titles[id(page_obj)] = ok, spec.title
        first = page_obj if ok and first is None else first

page = st.navigation(menu)
if page is start and first is not None:
    st.switch_page(first)
_engine, problem = webapp.engine()
with st.sidebar:
    _auth.sidebar(user)
    st.caption(f"ConnectBatch {__version__}")
    if problem:
        st.warning(problem)
_provisioned.forget_elsewhere(page.url_path)
if allowed.get(id(page), False):
    try:
        page.run()
    except Exception as exc:  # a bug: words on the screen, the traceback in the log
        _auth.page_failed(titles.get(id(page), page.title), exc)
else:
    _auth.not_allowed(user, titles.get(id(page), page.title))
