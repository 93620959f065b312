"""The app's screens: file, title, icon, address and who may open each, by menu section.

Read by the router (streamlit_app.py), which builds the navigation from it, and by the server
(streamlit_asgi.py), which answers each screen's address itself (see connectbatch.webapp).
"""

from __future__ import annotations

from app_pages._auth import PageSpec
from connectbatch.models import Role

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
LOGIN_PATH = "login"  # the login form's own address (it also stands in at every page's address)


def url_paths() -> list[str]:
    """Every address the app answers besides its root: the login form's and each screen's."""
    return [LOGIN_PATH, *(spec.url_path for specs in PAGES.values() for spec in specs)]
