"""The memory pool Arrow's buffers come from in a ConnectBatch process: jemalloc, giving freed
pages back to the system at once.

pyarrow's default pool on Linux is mimalloc. On the 1M-row ingest (bench/bench_pipeline.py,
2-core VM, six runs alternating) mimalloc's allocations of fresh batches were now and then
slow: the same ingest took 4.3-6.5 s (median 5.6 s), the Parquet writer 1.2-2.8 CPU s for the
same rows, joining the validated columns 0.03-0.9 s. jemalloc took 4.4-4.7 s (median 4.6 s).
With its default decay (freed pages kept ~1 s for reuse) it held more memory at the load's
peak (1.5-1.75x the file, issue 13's goal is <= 1.5x); with the decay at 0 it gives them back
at once and peaked at 1.37-1.48x, at the same speed.

An operator's own choice (ARROW_DEFAULT_MEMORY_POOL, read by Arrow itself) is kept; a pyarrow
built without jemalloc keeps its default pool.
"""

from __future__ import annotations

import pyarrow as pa

from connectbatch import settings

__all__ = ["configure"]

_configured: str | None = None


def configure() -> str:
    """Choose the pool once per process (later calls only say which); returns its name."""
    global _configured
    if _configured is None:
        _configured = _choose()
    return _configured


def _choose() -> str:
    if not settings.arrow_pool_chosen():
        try:
            pool = pa.jemalloc_memory_pool()
            pa.jemalloc_set_decay_ms(0)
        except NotImplementedError:  # this pyarrow has no jemalloc
            pass
        else:
            pa.set_memory_pool(pool)
    return str(pa.default_memory_pool().backend_name)
