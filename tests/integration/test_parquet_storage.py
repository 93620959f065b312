"""The loading, supersede, catalog, export, browse, call-data explorer, sync-back and crash
recovery tests again with every loaded file stored as a Parquet part (store/parts.py; the
threshold lowered to one row): a file behaves the same whichever way it is stored. Their own
modules run them with small files in the DuckDB table."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_browse import *  # noqa: F403
from test_crash_recovery import *  # noqa: F403
from test_explorer import *  # noqa: F403
from test_exports import *  # noqa: F403
from test_five_types import *  # noqa: F403
from test_redelivery import *  # noqa: F403
from test_syncback import *  # noqa: F403

from connectbatch.store import data as data_store


@pytest.fixture(autouse=True)
def _every_file_a_parquet_part(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(data_store, "PARQUET_MIN_ROWS", 1)
    yield
