"""`connectbatch partner add/edit --media-id N` (repeatable): a publisher's platform
MediaIds, which the partner screens show as "Name (id)"; a MediaId is one partner's at most."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli_partners import cli, cli_error, cli_json, home  # noqa: F401  (the fixture)


def test_media_ids_are_added_shown_replaced_and_cleared(
    home: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    added = cli_json(capsys, "partner", "add", "Leadwave Media", "--type", "publisher",
                     "--media-id", "98766", "--media-id", "98765")  # fmt: skip
    assert added["media_ids"] == [98765, 98766]
    shown = cli(capsys, "partner", "show", "Leadwave Media")
    assert any(line.split() == ["media", "ids", "98765,", "98766"] for line in shown.splitlines()), shown

    edited = cli_json(capsys, "partner", "edit", "Leadwave Media", "--media-id", "12")
    assert edited["media_ids"] == [12]
    kept = cli_json(capsys, "partner", "edit", "Leadwave Media", "--notes", "top publisher")
    assert kept["media_ids"] == [12]
    cleared = cli_json(capsys, "partner", "edit", "Leadwave Media", "--no-media-ids")
    assert cleared["media_ids"] == []


def test_a_media_id_of_another_partner_is_refused(
    home: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli(capsys, "partner", "add", "Leadwave Media", "--type", "publisher", "--media-id", "98765")

    cli_error(capsys, "partner", "add", "Other", "--type", "publisher", "--media-id", "98765",
              mentions="--media-id: MediaId 98765 already belongs to 'Leadwave Media'")  # fmt: skip
    cli_error(capsys, "partner", "edit", "Leadwave Media", "--media-id", "-3", mentions="--media-id")
