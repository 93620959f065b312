"""`python -m connectbatch ...`: the `connectbatch` command, for a shell where the virtual
environment's scripts are not on PATH."""

from __future__ import annotations

import sys

from connectbatch.cli import main

if __name__ == "__main__":
    sys.exit(main())
