"""ConnectBatch web app: the router.

Only page setup, the login, the shared sidebar and the list of screens live here; each screen
is one file in app_pages/ and talks to `connectbatch.webapp.services()` only (bound to the
logged-in user). Not "pages/": Streamlit would also read that as an old-style pages folder and
break deep links. Run it with `make run`.
"""

import streamlit as st

from app_pages import _auth
from app_pages._auth import PageSpec
from connectbatch import __version__, webapp
from connectbatch.models import Role

st.set_page_config(page_title="ConnectBatch", page_icon=":material/inbox:", layout="wide")

ANALYST, REVIEWER, PARTNER = (Role.ANALYST,), (Role.REVIEWER,), (Role.PARTNER_MANAGER,)
PAGES = {
    "Connections": [
        PageSpec("app_pages/connections.py", "Connections", ":material/cable:", "connections", ANALYST),
        PageSpec("app_pages/connection_wizard.py", "Create connection", ":material/add_link:",
                 "create-connection", ANALYST),
        PageSpec("app_pages/connection_detail.py", "Connection", ":material/history:", "connection", ANALYST),
        PageSpec("app_pages/delivery.py", "Delivery calendar", ":material/calendar_month:", "delivery",
                 ANALYST),
    ],
    "Data quality": [
        PageSpec("app_pages/validation.py", "Validation", ":material/rule:", "validation", REVIEWER),
        PageSpec("app_pages/parse_preview.py", "File format & dry run", ":material/fact_check:",
                 "file-format", REVIEWER),
        PageSpec("app_pages/triage.py", "Triage", ":material/alarm:", "triage", REVIEWER),
    ],
    "Partners": [
        PageSpec("app_pages/call_data.py", "Call data", ":material/call:", "call-data", PARTNER),
        PageSpec("app_pages/actions.py", "Pending actions", ":material/pending_actions:", "actions", PARTNER),
        PageSpec("app_pages/clicks.py", "Clicks", ":material/ads_click:", "clicks", PARTNER),
        PageSpec("app_pages/catalog.py", "Product catalog", ":material/inventory_2:", "catalog", PARTNER),
        PageSpec("app_pages/partners.py", "Partners", ":material/handshake:", "partners",
                 (Role.ANALYST, Role.REVIEWER, Role.PARTNER_MANAGER)),
    ],
    "Admin": [
        PageSpec("app_pages/users.py", "Users", ":material/group:", "users", ()),
        PageSpec("app_pages/workers.py", "Workers", ":material/dns:", "workers", ()),
    ],
}  # fmt: skip

user = _auth.current_user()
if user is None:
    # Only the login form runs; it stands in at every page's address, so that a bookmark
    # opens its page once the person has logged in.
    login = [st.Page(_auth.login_form, title="Log in", icon=":material/login:", url_path="login",
                     default=True)]  # fmt: skip
    login += [st.Page(_auth.login_form, title=spec.title, url_path=spec.url_path, visibility="hidden")
              for specs in PAGES.values() for spec in specs]  # fmt: skip
    st.navigation(login, position="hidden").run()
    st.stop()

# The pages the role may use are listed; the others stay registered but hidden, so that a
# deep link to one shows "not allowed" instead of another page.
first = next(spec for specs in PAGES.values() for spec in specs if _auth.may_open(user, spec))
menu: dict[str, list[st.Page]] = {}
allowed: dict[int, bool] = {}
titles: dict[int, str] = {}
for section, specs in PAGES.items():
    for spec in specs:
        ok = _auth.may_open(user, spec)
        page_obj = st.Page(spec.path, title=spec.title, icon=spec.icon, url_path=spec.url_path,
                           default=spec is first, visibility="visible" if ok else "hidden")  # fmt: skip
        menu.setdefault(section if ok else "", []).append(page_obj)
        allowed[id(page_obj)], titles[id(page_obj)] = ok, spec.title

page = st.navigation(menu)
_engine, problem = webapp.engine()
with st.sidebar:
    _auth.sidebar(user)
    st.caption(f"ConnectBatch {__version__}")
    if problem:
        st.warning(problem)
if allowed.get(id(page), False):
    page.run()
else:
    _auth.not_allowed(user, titles.get(id(page), page.title))
