"""Write expectations/<data_type>.json for every data type of the schema registry.

    python scripts/generate_expectations.py          # (re)write the suites
    python scripts/generate_expectations.py --check  # exit 1 if a committed suite is stale

The suites are committed so a reviewer can read them and git shows every rule change; they
are generated (connectbatch.pipeline.validation.build_suite) so a column added to the registry, or a
rule added to the generator, reaches them without hand edits. Hand edits to the JSON are lost
on the next run, and the unit tests fail until the generator agrees.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # runnable from a checkout without installing
    sys.path.insert(0, str(REPO))

from connectbatch import schemas  # noqa: E402
from connectbatch.pipeline.validation import build_suite  # noqa: E402


def render(data_type: str) -> str:
    """The exact file content for one suite: stable key order, two-space indent, final newline."""
    return json.dumps(build_suite(data_type), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale suites, write nothing")
    parser.add_argument("--out", type=Path, default=REPO / "expectations", help="target folder")
    args = parser.parse_args(argv)

    stale = []
    for key in schemas.REGISTRY:
        path = args.out / f"{key}.json"
        text = render(key)
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    known = {f"{key}.json" for key in schemas.REGISTRY}
    orphans = sorted(p for p in args.out.glob("*.json") if p.name not in known)

    verb = "stale" if args.check else "written"
    for path in stale:
        print(f"{verb}: {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    for path in orphans:
        print(f"not a registry data type (delete it?): {path}")
    if not stale:
        print(f"{len(schemas.REGISTRY)} suites up to date")
    return 1 if args.check and (stale or orphans) else 0


if __name__ == "__main__":
    sys.exit(main())
