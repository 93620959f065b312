"""The documentation matches the code: the README's commands exist, and the UI documents every
column of every data type."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from connectbatch import cli, schemas

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
MAKEFILE = REPO / "Makefile"


def makefile_targets() -> set[str]:
    text = MAKEFILE.read_text()
    # `name: deps` rules, not `VAR := value` assignments
    return set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", text, flags=re.MULTILINE))


def readme_make_commands() -> set[str]:
    """`make X` in inline code, and lines of fenced code blocks that run `make X`."""
    text = README.read_text()
    inline = re.findall(r"`make ([a-z][\w-]*)", text)
    in_blocks = re.findall(r"^(?:\$ )?make ([a-z][\w-]*)", text, flags=re.MULTILINE)
    return set(inline) | set(in_blocks)


def readme_cli_commands() -> set[str]:
    return set(re.findall(r"^(?:\$ )?connectbatch ([a-z][\w-]*)", README.read_text(), re.M))


def load_page() -> ModuleType:
    """The page as a module: its UI only renders when Streamlit runs it as __main__."""
    return importlib.import_module("app_pages.parse_preview")


def test_readme_shows_the_two_main_commands() -> None:
    assert {"run", "test"} <= readme_make_commands()


def test_every_make_command_in_the_readme_is_a_makefile_target() -> None:
    missing = readme_make_commands() - makefile_targets()
    assert not missing, f"README mentions make targets the Makefile lacks: {sorted(missing)}"


def test_every_phony_target_is_described_by_make_help() -> None:
    text = MAKEFILE.read_text()
    phony_line = re.search(r"^\.PHONY:(.*)$", text, flags=re.MULTILINE)
    assert phony_line is not None
    phony = set(phony_line.group(1).split())
    described = set(re.findall(r"^([a-z][\w-]*):.*## ", text, flags=re.MULTILINE))
    assert phony == described


def test_every_cli_command_in_the_readme_exists() -> None:
    missing = readme_cli_commands() - set(cli.COMMANDS)
    assert not missing, f"README shows connectbatch subcommands that do not exist: {missing}"


@pytest.mark.parametrize("key", list(schemas.REGISTRY))
def test_ui_column_docs_cover_every_schema_column(key: str) -> None:
    data_type = schemas.get(key)

    docs = load_page().column_docs(data_type)

    assert [row["Column"] for row in docs] == data_type.column_names
    for row, column in zip(docs, data_type.columns, strict=True):
        assert row["Type"] == schemas.TYPE_LABELS[column.kind]
        assert row["Required"] is column.required
        assert row["Default"] == (column.default or "")
        assert row["Description"] == column.description
        for value in column.allowed:
            assert value in str(row["Allowed values"])
