"""The Arrow memory pool a ConnectBatch process allocates its tables from (arrow_memory)."""

from __future__ import annotations

import os
import subprocess
import sys

import pyarrow as pa
import pytest

PROBE = (
    "import pyarrow as pa, connectbatch.parser\n"
    "from connectbatch.parser import parse_bytes\n"
    "parse_bytes(b'CallSessionId\\nx\\n', None)\n"
    "print(pa.default_memory_pool().backend_name)"
)


def _pool(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _has_jemalloc() -> bool:
    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        return False
    return True


@pytest.mark.skipif(not _has_jemalloc(), reason="this pyarrow is built without jemalloc")
def test_a_process_that_parses_allocates_from_jemalloc() -> None:
    assert _pool() == "jemalloc"


def test_the_operators_own_pool_is_kept() -> None:
    assert _pool(ARROW_DEFAULT_MEMORY_POOL="system") == "system"
