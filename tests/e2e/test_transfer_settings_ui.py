"""Every typed transfer setting is reachable in the app: the wizard's Location step shows the
method's settings (FTP TLS and passive mode, IMAP security, SFTP host key), the connection's
Edit tab changes them, the login is a password or an SSH key as the person chooses, and a bad
setting is told next to the form, never as a traceback."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from connectbatch.services import Services
from connectbatch.transfer.specs import FtpSpec, FtpTls, ImapSecurity, ImapSpec, SftpSpec
from tests.e2e.test_connections_ui import (  # the fixtures: one engine and data dir per test
    demo_data,  # noqa: F401
    demo_template,  # noqa: F401
    next_step,
    open_page,
    services,  # noqa: F401
    start_wizard,
    texts,
)

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py

FINGERPRINT = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"


def pull_location(at: AppTest, method: str, host: str) -> None:
    at.radio(key="wiz_method").set_value(method)
    at.radio(key="wiz_methodology").set_value("pull").run()
    at.text_input(key="wiz_host").input(host)


def test_wizard_creates_an_implicit_ftps_pull_in_active_mode(services: Services) -> None:  # noqa: F811
    at = start_wizard("Partner FTPS")
    pull_location(at, "ftp", "ftp.partner.example")
    at.text_input(key="wiz_folder").input("/out")
    at.radio(key="wiz_ftp_tls").set_value(FtpTls.IMPLICIT)
    at.checkbox(key="wiz_verify").uncheck()
    at.checkbox(key="wiz_ftp_passive").uncheck()
    next_step(at)
    assert "wiz_auth" not in [r.key for r in at.radio]  # keys log in to SFTP only
    at.text_input(key="wiz_username").input("acme")
    at.text_input(key="wiz_password").input("s3cret")
    next_step(at)
    at.button(key="wiz_create").click().run()

    assert not at.exception
    assert "Connection Partner FTPS created." in texts(at)
    created = services.connection("Partner FTPS")
    assert created.transfer == FtpSpec(tls=FtpTls.IMPLICIT, verify=False, passive=False)


def test_wizard_tells_a_bad_fingerprint_on_the_location_step(services: Services) -> None:  # noqa: F811
    at = start_wizard("Partner SFTP")
    pull_location(at, "sftp", "sftp.partner.example")
    at.text_input(key="wiz_folder").input("/out")
    at.text_input(key="wiz_sftp_fingerprint").input("not-a-fingerprint")
    next_step(at)

    assert "Host key fingerprint: 'not-a-fingerprint' is not a SHA256 fingerprint" in texts(at)
    at.text_input(key="wiz_sftp_fingerprint").input(FINGERPRINT)
    at.number_input(key="wiz_sftp_request_size").set_value(65536)
    next_step(at)
    assert at.text_input(key="wiz_username")
    at.button(key="wiz_back").click().run()
    assert at.text_input(key="wiz_sftp_fingerprint").value == FINGERPRINT  # kept across steps


def test_a_key_login_asks_for_the_key_and_its_passphrase_not_a_password() -> None:
    at = start_wizard("Key login")
    pull_location(at, "sftp", "sftp.partner.example")
    at.text_input(key="wiz_folder").input("/out")
    next_step(at)
    at.radio(key="wiz_auth").set_value("key").run()

    assert at.text_input(key="wiz_passphrase")
    assert "wiz_password" not in [t.key for t in at.text_input]
    at.text_input(key="wiz_username").input("acme")
    next_step(at)
    assert "Private key: upload the private key file" in texts(at)


def test_wizard_shows_imap_settings_for_a_mailbox_pull(services: Services) -> None:  # noqa: F811
    at = start_wizard("Partner mailbox")
    pull_location(at, "email", "imap.partner.example")
    at.radio(key="wiz_imap_security").set_value(ImapSecurity.STARTTLS)
    at.text_input(key="wiz_imap_move_to").input("INBOX/Done")
    at.text_input(key="wiz_imap_recipient").input("feeds+acme@partner.example")
    next_step(at)
    at.text_input(key="wiz_username").input("feeds@partner.example")
    at.text_input(key="wiz_password").input("s3cret")
    next_step(at)
    at.button(key="wiz_create").click().run()

    assert not at.exception
    created = services.connection("Partner mailbox")
    assert created.transfer == ImapSpec(
        security=ImapSecurity.STARTTLS, move_to="INBOX/Done", recipient="feeds+acme@partner.example"
    )


def test_edit_changes_a_typed_setting_and_tells_a_bad_one(demo_data: Services) -> None:  # noqa: F811
    pull = demo_data.connection("Invoca daily export")
    at = open_page()
    at.button(key=f"edit_{pull.id}").click().run()
    at.text_input(key=f"edit_sftp_fingerprint_{pull.id}").input(FINGERPRINT)
    at.button(key="edit_save").click().run()
    assert not at.exception
    assert "Saved Invoca daily export: Transfer settings." in texts(at)
    assert demo_data.connection(pull.id).transfer == SftpSpec(host_key_fingerprint=FINGERPRINT)

    mailbox = demo_data.connection("Web conversions")
    at.selectbox(key="detail_connection").set_value(mailbox.id)
    at.session_state["connection_id"] = mailbox.id
    at.run()
    at.radio(key=f"edit_imap_security_{mailbox.id}").set_value(ImapSecurity.PLAIN)
    at.button(key="edit_save").click().run()
    assert not at.exception
    assert any(e.value.startswith("Security: plain IMAP to imap.acme.example") for e in at.error)
    assert demo_data.connection(mailbox.id).transfer == ImapSpec()
