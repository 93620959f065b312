"""A fingerprint of the code this process runs: its package's sources and its expectation
suites, as they are on disk.

Distributed mode (`connectbatch.distributed`) has workers parse and validate what the
coordinator then loads. A worker left on an older release was accepted without a word, and
brought back a fixed bug (a distributed audit: a worker from before a parser fix loaded the
key "NULL" the coordinator's own code refuses). Every task now carries the coordinator's
fingerprint and a worker refuses one that is not its own (`distributed.sealed`). The version
number alone would not do: it does not change between two commits of one release.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from connectbatch import settings

PACKAGE = Path(__file__).resolve().parent
# What decides how a file is parsed, validated and loaded: the sources, not the compiled core
# (built from the .pyx and .pxi sources hashed here) nor caches.
_SOURCES = ("*.py", "*.pyx", "*.pxi", "*.pxd", "*.sql", "*.json")


@cache
def fingerprint() -> str:
    """The first 16 hex digits of a sha256 over every source file's path and bytes, read once
    a process (~200 files, a few ms)."""
    digest = hashlib.sha256()
    files = {p for pattern in _SOURCES for p in PACKAGE.rglob(pattern) if "__pycache__" not in p.parts}
    suites = settings.expectations_dir()
    named = [(f"package/{p.relative_to(PACKAGE).as_posix()}", p) for p in files]
    if suites.is_dir():
        named += [(f"expectations/{p.name}", p) for p in suites.glob("*.json")]
    for name, path in sorted(named):
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
