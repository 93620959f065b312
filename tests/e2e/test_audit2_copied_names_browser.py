"""Names a person reads on the page are the names they must use (Chromium, an audit of
2026-12-07):

* the Delete tab asks to type the connection's name, which its warning shows: copied from
  there, a name such as "www.acme.example calls" carried the invisible joiner that stops
  Streamlit from making it a link, matched nothing, and the Delete button stayed disabled;
* the Users page's "Added x._admin_." read "Added x.admin." with "admin" in italics: the
  name the new user must log in with, shown wrong once and never again; and once logged in,
  the sidebar's "Logged in as" read the same wrong name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from browser import StreamlitApp, click, log_in, new_page, open_path, wait_rendered

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services
from connectbatch.settings import Settings

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

NAME = "www.acme.example calls"
USER = "x._admin_"


def test_a_connection_name_copied_from_the_delete_warning_confirms_the_delete(
    app_page: Page, streamlit_server: StreamlitApp
) -> None:
    from playwright.sync_api import expect

    services = Services(Settings(home=streamlit_server.home, sftp_port=0, ftp_port=0))
    services.add_partner("Acme www", "vendor")
    created, _ = services.create_connection(
        Connection(NAME, "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH, pattern="*"),
        partner="Acme www",
    )
    open_path(app_page, f"connection?connection={created.id}")
    app_page.locator(".st-key-detail_tab").get_by_text("Delete", exact=True).click()
    wait_rendered(app_page)

    shown = app_page.locator('[data-testid="stAlertContentWarning"] strong').inner_text()
    assert shown.replace("\u2060", "") == NAME  # what the person reads, and copies
    field = app_page.locator(f".st-key-delete_confirm_{created.id} input")
    field.fill(shown)
    field.press("Enter")
    wait_rendered(app_page)
    expect(app_page.locator(".st-key-delete_connection button")).to_be_enabled()
    click(app_page, "delete_connection")
    assert all(c.id != created.id for c in services.connections())


def test_a_new_users_name_reads_as_typed_when_added_and_once_logged_in(
    app_page: Page, chromium_browser: Browser, streamlit_server: StreamlitApp
) -> None:
    open_path(app_page, "users")
    field = app_page.locator(".st-key-users_name input")
    field.fill(USER)
    field.press("Enter")
    wait_rendered(app_page)
    click(app_page, "users_add")

    message = app_page.locator('[data-testid="stAlertContentSuccess"]').inner_text()
    assert f"Added {USER}." in message, message
    password = app_page.locator('[data-testid="stCode"]').first.inner_text().strip()

    # The new user logs in with what they were given and reads their own name.
    theirs = new_page(chromium_browser, streamlit_server)
    try:
        theirs.goto("/")
        wait_rendered(theirs)
        log_in(theirs, USER, password)
        caption = theirs.locator('[data-testid="stSidebar"]').get_by_text("Logged in as").inner_text()
        assert caption.startswith(f"Logged in as {USER} ·"), caption
    finally:
        theirs.context.close()
