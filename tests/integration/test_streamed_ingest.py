"""The pipeline, redelivery, five-types, lifecycle, mapping, results-file, single-file-run,
crash-recovery, sync-back and export tests again with every file streamed in tiny batches
(pipeline/stream.py, issue 13: the threshold lowered to no bytes, batches of a few kB): a file
behaves the same whichever way it is ingested. Modes that cannot stream (stream.streams) take
the whole parse as before."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_crash_recovery import *  # noqa: F403
from test_exports import *  # noqa: F403
from test_five_types import *  # noqa: F403
from test_group_loaded_meanwhile import *  # noqa: F403
from test_lifecycle import *  # noqa: F403
from test_mapping_pipeline import *  # noqa: F403
from test_pipeline import *  # noqa: F403
from test_redelivery import *  # noqa: F403
from test_results_partner import *  # noqa: F403
from test_single_file_run import *  # noqa: F403
from test_syncback import *  # noqa: F403

from connectbatch.parser import batches
from connectbatch.pipeline import stream


@pytest.fixture(autouse=True)
def _every_file_streams(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(stream, "STREAM_MIN_BYTES", 0)
    # A few kB: the other tests' small files come in several batches. The crash tests' 117 MB
    # file comes in ~100 batches of 1 MB: in 29,000 of 4 kB each of its ingests took a minute
    # (as many Parquet row groups) and proved nothing more.
    crash_test = request.function.__module__ == "test_crash_recovery"
    monkeypatch.setattr(batches, "BATCH_BYTES", 1 << 20 if crash_test else 4096)
    yield
