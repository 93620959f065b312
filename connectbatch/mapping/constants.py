"""Constant columns: a fixed value for a column the partner's export cannot carry (the
CampaignId of a single-campaign vendor, the CallProvider of a vendor that never names
itself). A constant fills the column where the file has no value; a value in the file wins.

The parser sees the constant's column as optional (`relax`), so a file without it is not
refused; `fill` then writes the typed constant into every empty cell, before validation.
"""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pyarrow.compute as pc

from connectbatch.errors import ConfigurationError
from connectbatch.schemas import DataType


def check(data_type: DataType, constants: dict[str, str]) -> dict[str, str]:
    """The constants with our canonical column names; refuses unknown columns and values
    that do not convert to the column's type."""
    by_lower = {c.name.lower(): c for c in data_type.columns}
    out: dict[str, str] = {}
    for name, value in constants.items():
        col = by_lower.get(name.strip().lower())
        if col is None:
            raise ConfigurationError(f"constant for {name!r}: not a column of {data_type.label}")
        text = str(value).strip()
        if not text:
            raise ConfigurationError(f"constant for {col.name}: the value is empty")
        try:
            typed(data_type, col.name, text)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
            raise ConfigurationError(
                f"constant for {col.name}: {text!r} is not a valid {col.kind.value}"
            ) from None
        out[col.name] = text
    return out


def typed(data_type: DataType, column: str, value: str) -> pa.Scalar:
    col = data_type.column(column)
    if col.kind.value == "seconds":
        return pa.scalar(int(value), col.arrow_type)
    return pa.array([value]).cast(col.arrow_type)[0]


def relax(data_type: DataType, constants: dict[str, str]) -> DataType:
    """The data type as the parser should read it: constant columns optional."""
    if not constants:
        return data_type
    cols = tuple(
        dataclasses.replace(c, required=False) if c.name in constants else c for c in data_type.columns
    )
    return dataclasses.replace(data_type, columns=cols)


def fill(table: pa.Table, data_type: DataType, constants: dict[str, str]) -> pa.Table:
    """Empty cells of each constant column take the constant; the result has the data
    type's own schema (required columns non-nullable again)."""
    for name, value in constants.items():
        i = table.schema.get_field_index(name)
        filled = pc.fill_null(table.column(i), typed(data_type, name, value))
        table = table.set_column(i, table.schema.field(i), filled)
    return table.cast(data_type.arrow_schema())
