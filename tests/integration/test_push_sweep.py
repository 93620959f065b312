"""Broken uploads' leftovers go after CONNECTBATCH_PARTIAL_UPLOAD_GRACE_HOURS also when the
engine serves SFTP alone: only the hosted FTP server swept the push folders, so a deployment
without FTP kept every interrupted SFTP upload for ever."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ftpd import free_port

from connectbatch.engine import Engine
from connectbatch.services import Services
from connectbatch.settings import Settings


def test_the_engine_serving_sftp_alone_sweeps_old_partial_uploads(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", sftp_port=free_port(), ftp_port=0, bind="127.0.0.1")
    folder = settings.home / "push" / "7"
    folder.mkdir(parents=True)
    old, fresh = folder / "calls.csv", folder / "today.csv"
    old.write_bytes(b"CampaignId,half a file")
    fresh.write_bytes(b"CampaignId,still being resumed")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))

    engine = Engine(Services(settings))
    engine.start()
    try:
        assert [server.__class__.__name__ for server in engine.servers] == ["HostedSftpServer"]
        assert not old.exists()
        assert fresh.exists()  # within the grace: kept for a resume
        assert "push-sweep" in {job.id for job in engine.scheduler._scheduler.get_jobs()}
    finally:
        engine.stop()


def test_a_grace_of_0_hours_removes_nothing_rather_than_uploads_in_progress(tmp_path: Path) -> None:
    """CONNECTBATCH_PARTIAL_UPLOAD_GRACE_HOURS=0 (accepted by the settings) swept every file
    in the push folders older than "now": an upload being written that moment and an upload
    waiting to be loaded went too, lost after the partner was told it arrived. 0 now keeps
    them, as CONNECTBATCH_STAGING_RETENTION_DAYS=0 keeps staged files."""
    settings = Settings(
        home=tmp_path / "home", sftp_port=free_port(), ftp_port=0, bind="127.0.0.1",
        partial_upload_grace_hours=0,
    )  # fmt: skip
    folder = settings.home / "push" / "7"
    folder.mkdir(parents=True)
    writing = folder / "calls.csv"
    writing.write_bytes(b"CampaignId,the first half of a file still arriving")
    time.sleep(0.05)

    engine = Engine(Services(settings))
    engine.start()
    try:
        assert writing.exists()
    finally:
        engine.stop()
