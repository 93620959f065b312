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
