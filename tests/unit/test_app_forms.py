"""Each rule of the app's forms lives once: the table of encodings and delimiters is only in
app_pages/_ui.py, and the connection forms (location, login, schedule and file format) are only
in app_pages/_forms.py, used by both the wizard and the connection page."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted((REPO / "app_pages").glob("*.py"))
MAX_LINES = 450


def assigned_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def test_encodings_and_delimiters_are_defined_only_in_ui() -> None:
    owners = {p.name for p in PAGES if {"ENCODINGS", "DELIMITERS"} & assigned_names(p)}

    assert owners == {"_ui.py"}


@pytest.mark.parametrize(
    "label",
    ['"Folder"', '"Username"', '"Password"', '"Schedule (cron)"', '"Lock period (days)"', '"Encoding"'],
)
def test_connection_form_fields_are_drawn_only_by_the_shared_forms(label: str) -> None:
    widget = re.compile(r"\.(?:text_input|number_input|selectbox|radio)\(\s*" + re.escape(label))
    drawing = {p.name for p in PAGES if widget.search(p.read_text())}

    # _auth.py: the login form's own "Password", not a connection field.
    assert drawing <= {"_forms.py", "parse_preview.py", "_auth.py"}, drawing


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_app_page_is_over_the_size_limit(page: Path) -> None:
    assert len(page.read_text().splitlines()) <= MAX_LINES


def test_the_show_once_box_names_what_the_partner_pins() -> None:
    """Host, port, login, and the SFTP host key / FTPS certificate fingerprints to pin."""
    from app_pages._provisioned import provisioned_lines
    from connectbatch.services import Provisioned

    sftp = Provisioned("files.example.com", 2222, "cb_acme", "secret", host_key_fingerprint="SHA256:abc")
    assert provisioned_lines(sftp)[-1] == ("SFTP host key", "SHA256:abc")
    ftps = Provisioned("files.example.com", 2121, "cb_acme", "secret", certificate_fingerprint="AB:CD")
    assert ("FTPS certificate (SHA-256)", "AB:CD") in provisioned_lines(ftps)
    # host and port alone: a partner tried plain FTP and got "530 Access denied"
    assert provisioned_lines(ftps)[-1] == (
        "Connect with", "explicit FTPS (AUTH TLS, then PROT P): ftpes://files.example.com:2121/"
    )  # fmt: skip
    assert all(label != "Connect with" for label, _ in provisioned_lines(sftp))
    mail = Provisioned("", None, "cb_mail", "secret", email_address="inbox+acme@example.com")
    # e-mail push: the partner only mails to the address (a login of ours worked nowhere)
    assert provisioned_lines(mail) == [("E-mail address", "inbox+acme@example.com")]
