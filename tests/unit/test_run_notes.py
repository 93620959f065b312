"""What a pull run's note says about files it took but could not tidy up (`pull.notes`)."""

from __future__ import annotations

from connectbatch.transfer.pull.notes import RunNotes


def test_permission_advice_only_when_the_server_refused() -> None:
    """When our own deadline cut the connection before the delete, the note still told the
    partner to give the login permission to delete files."""
    refused = RunNotes("delete")
    refused.not_tidied("a.csv", "FTP 10.0.0.1:21: DELE /in/a.csv failed: 550 Permission denied")
    assert "needs permission to delete files" in refused.text()

    cut = RunNotes("delete")
    cut.not_tidied("a.csv", "SFTP 10.0.0.1:22: deleting /in/a.csv failed: the server closed the connection")
    assert "permission" not in cut.text() and "a later run tidies them up" in cut.text()

    archive = RunNotes("archive")
    archive.not_tidied("a.csv", "permission denied renaming /in/a.csv")
    assert "rename files into the archive folder" in archive.text()
