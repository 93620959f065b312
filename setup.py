"""Build the Cython hot path (`connectbatch/_csvcore.pyx`).

`_csvcore.pyx` is one C unit that `include`s its parts from `connectbatch/parser/*.pxi`;
`include_path` lets cythonize find them, and `depends` rebuilds the extension when one changes.

Why a setup.py next to pyproject.toml: setuptools still needs it to declare C extensions.
`CONNECTBATCH_DEBUG=1` builds with `-O0 -g`, bounds checks on and an annotated HTML
(`connectbatch/_csvcore.html`) for profiling; the default is `-O3 -Wall` (no `-march`: a
built wheel runs on any x86-64). -O3 over -O2 took the 1M-row parse from 0.78-0.80 to
0.75-0.76 s on one thread, in alternating fresh-process runs (issue 13). Generated `.c`,
`.html` and `.so` files are ignored by git and not shipped in the wheel's sources.
"""

import glob
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("CONNECTBATCH_DEBUG", "") not in ("", "0")

extension = Extension(
    "connectbatch._csvcore",
    sources=["connectbatch/_csvcore.pyx"],
    depends=["connectbatch/_csvcore.pxd", *sorted(glob.glob("connectbatch/parser/*.pxi"))],
    extra_compile_args=(
        ["-O0", "-g", "-Wall"] if DEBUG else ["-O3", "-Wall", "-Wno-unused-function"]
    ),
)

setup(
    ext_modules=cythonize(
        [extension],
        annotate=DEBUG,
        include_path=["connectbatch"],
        compiler_directives={
            "language_level": "3",
            "boundscheck": DEBUG,
            "wraparound": False,
            "initializedcheck": DEBUG,
            "cdivision": True,
            "embedsignature": True,
        },
    ),
)
