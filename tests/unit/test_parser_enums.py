"""The numbers the parser cores exchange with the Python side exist once on each side and agree.

C side: the enums of `connectbatch/_csvcore.pxd`, exported by the compiled module as KINDS,
CODES and HEADER_STATUSES. Python side: `plan.CoreKind`, `plan.Code`, `plan.HeaderStatus`,
which the reference core uses too. Editing either side alone fails here.
"""

from __future__ import annotations

import re
import types
from enum import IntEnum
from pathlib import Path

import pytest

from connectbatch.errors import ConnectBatchError
from connectbatch.parser import api, plan, refcore

PACKAGE = Path(plan.__file__).resolve().parents[1]
PXD = PACKAGE / "_csvcore.pxd"
CYTHON_SOURCES = [PACKAGE / "_csvcore.pyx", *sorted((PACKAGE / "parser").glob("*.pxi"))]
# The .pxd prefix of each exported enum.
PREFIX = {"KINDS": "K_", "CODES": "C_", "HEADER_STATUSES": "H_"}


@pytest.fixture(scope="module")
def cython_core() -> types.ModuleType:
    try:
        from connectbatch import _csvcore
    except ImportError as exc:
        pytest.fail(f"the compiled core is not built ({exc}); run `make build` first")
    return _csvcore


def _pxd_enum(prefix: str) -> dict[str, int]:
    """`NAME = value` members of the .pxd's enums with this prefix, read from the source."""
    found = re.findall(rf"^\s+{prefix}([A-Z_]+)\s*=\s*(-?\d+)", PXD.read_text(), re.MULTILINE)
    return {name: int(value) for name, value in found}


@pytest.mark.parametrize("attribute", sorted(plan.CORE_CONSTANTS))
def test_compiled_core_exports_the_python_enums(cython_core: types.ModuleType, attribute: str) -> None:
    enum: type[IntEnum] = plan.CORE_CONSTANTS[attribute]
    assert getattr(cython_core, attribute) == {m.name: m.value for m in enum}


@pytest.mark.parametrize("attribute", sorted(plan.CORE_CONSTANTS))
def test_pxd_declares_exactly_the_python_enums(attribute: str) -> None:
    """Also catches a .pxd member added without exporting it (the export dict would not say)."""
    enum = plan.CORE_CONSTANTS[attribute]
    assert _pxd_enum(PREFIX[attribute]) == {m.name: m.value for m in enum}


def test_the_enums_are_declared_once_in_cython() -> None:
    """No K_/C_/H_/TOK_/F_ constant is (re)declared outside the .pxd."""
    pattern = re.compile(r"^\s+(K|C|H|TOK|F)_[A-Z_]+\s*=\s*-?\d+\s*$", re.MULTILINE)
    for source in CYTHON_SOURCES:
        assert not pattern.findall(source.read_text()), f"{source.name} redeclares a .pxd enum"


def test_the_python_enums_are_declared_once() -> None:
    """The reference core and the API use plan's enums rather than copies of their own."""
    for name in ("Code", "CoreKind", "HeaderStatus"):
        assert getattr(refcore, name) is getattr(plan, name)
    assert refcore.HEADER_OK is plan.HeaderStatus.OK
    copies = re.compile(r"^class (Code|CoreKind|HeaderStatus)\b|=\s*range\(", re.MULTILINE)
    for module in (refcore, api):
        assert module.__file__ is not None
        assert not copies.findall(Path(module.__file__).read_text()), module.__name__


def test_header_statuses_agree_on_both_cores(cython_core: types.ModuleType) -> None:
    for member in plan.HeaderStatus:
        assert getattr(cython_core, f"HEADER_{member.name}") == member
        assert getattr(refcore, f"HEADER_{member.name}") == member


def test_a_compiled_core_that_disagrees_is_refused(cython_core: types.ModuleType) -> None:
    """A stale build (enums edited, not recompiled) stops the parse instead of mis-wording rejects."""
    plan.check_core_constants(cython_core)
    stale = types.ModuleType("stale_core")
    for attribute in plan.CORE_CONSTANTS:
        setattr(stale, attribute, dict(getattr(cython_core, attribute)))
    stale.__dict__["CODES"]["BAD_ENUM"] = 99
    with pytest.raises(ConnectBatchError, match="CODES"):
        plan.check_core_constants(stale)
