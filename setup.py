"""Build the Cython hot path (`connectbatch/_csvcore.pyx`).

`_csvcore.pyx` is one C unit that `include`s its parts from `connectbatch/parser/*.pxi`;
`include_path` lets cythonize find them, and `depends` rebuilds the extension when one changes.

Why a setup.py next to pyproject.toml: setuptools still needs it to declare C extensions.
`CONNECTBATCH_DEBUG=1` builds with `-O0 -g`, bounds checks on and an annotated HTML
(`connectbatch/_csvcore.html`) for profiling; the default is `-O2 -Wall`. Generated `.c`,
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
        ["-O0", "-g", "-Wall"] if DEBUG else ["-O2", "-Wall", "-Wno-unused-function"]
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
