"""A streamed big file killed mid-stream (its part half written) or mid-load (its part renamed,
its row not committed): the restart marks the run Failed, nothing of it is stored, no part
file is left behind, and a retry loads the file whole (pipeline/stream.py, issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_crash_recovery import (
    _assert_recovered,
    _assert_retry_loads_everything,
    _create_connection,
    _kill,
    _services,
    _start,
    _wait_for,
    big_file,  # noqa: F401 (a fixture)
    crash_env,  # noqa: F401 (a fixture)
)

from connectbatch.pipeline import stream


def _part_files(home: Path) -> list[str]:
    parts = home / "parts"
    found = parts.rglob("f*") if parts.exists() else []
    return sorted(p.name for p in found)


@pytest.mark.parametrize("stage", ["parsing", "loading"])
def test_killed_mid_stream_leaves_no_part_behind(
    stage: str,
    big_file: Path,  # noqa: F811
    crash_env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    assert big_file.stat().st_size >= stream.STREAM_MIN_BYTES  # the child streams it
    _create_connection()
    marker = tmp_path / f"{stage}.marker"
    child = _start(stage, big_file, marker, crash_env)
    _wait_for(child, marker)
    home = _services().settings.home
    written = _part_files(home)
    assert written and all(".parquet" in name for name in written)  # the batches so far
    _kill(child)

    services = _services()
    run_id = _assert_recovered(services)
    assert _part_files(home) == []
    _assert_retry_loads_everything(services, run_id, big_file)
    [part] = _part_files(home)  # the retry's, made a part by its load
    assert part.endswith(".parquet")
