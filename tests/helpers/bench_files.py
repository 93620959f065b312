"""Files from the benchmark's generator (bench/generate.py) for tests: every column style
vendors send, 0.5 % of rows broken on purpose. bench/ is no package, so the module is loaded
from its path, once."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


@functools.cache
def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_generate", REPO / "bench" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def generated_calls(path: Path, rows: int, seed: int) -> Path:
    """Write a generated call-conversion file of `rows` rows to `path` and return it."""
    _generator().generate(path, rows=rows, seed=seed)
    return path
