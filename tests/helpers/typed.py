"""Valid files of ANY data type, built from the schema registry (each column's template
example), so a test covers every data type without a hand-written builder per type.

    rows = typed_rows("clicks", 25, prefix="clk")     # ClickId clk-0000 ... clk-0024
    data = typed_csv("product_catalogs", 25, broken={3})   # data row 3 has a bad value

Timestamps are dated relative to now (validation refuses old and future events); key
columns get `<prefix>-<i:04d>`; `overrides` sets cells of chosen rows.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from connectbatch import schemas
from helpers import fresh_date, iso, to_csv

BAD_VALUE = "not-a-value"


def breakable_column(data_type: str) -> str:
    """The first required column that a non-number makes invalid (a typed, non-key one)."""
    dtype = schemas.get(data_type)
    typed = (schemas.Kind.INTEGER, schemas.Kind.DECIMAL, schemas.Kind.SECONDS)
    return next(
        c.name for c in dtype.columns if c.required and c.kind in typed and c.name not in dtype.key_columns
    )


def typed_rows(
    data_type: str,
    n: int,
    *,
    prefix: str = "k",
    broken: Collection[int] = (),
    overrides: Mapping[int, Mapping[str, str]] | None = None,
) -> list[dict[str, str]]:
    dtype = schemas.get(data_type)
    bad = breakable_column(data_type) if broken else ""
    rows: list[dict[str, str]] = []
    for i in range(n):
        row = {c.name: c.example for c in dtype.columns}
        for column in dtype.columns:
            if column.kind is schemas.Kind.TIMESTAMP and column.example:
                row[column.name] = iso(fresh_date(1 + (i % 5) / 10))
        for key in dtype.key_columns:
            row[key] = f"{prefix}-{i:04d}"
        if i in broken:
            row[bad] = BAD_VALUE
        row.update((overrides or {}).get(i, {}))
        rows.append(row)
    return rows


def typed_csv(
    data_type: str,
    n: int,
    *,
    prefix: str = "k",
    broken: Collection[int] = (),
    overrides: Mapping[int, Mapping[str, str]] | None = None,
) -> bytes:
    """A file of `n` rows of `data_type` with every column of its schema (data row i is on
    physical line i + 2)."""
    rows = typed_rows(data_type, n, prefix=prefix, broken=broken, overrides=overrides)
    return to_csv(rows, schemas.get(data_type).column_names)
