"""Filter values a person types into the partner screens (call data, clicks, catalog): ids
typed into a multiselect that accepts new options are checked here, once, with a message that
names the filter; the text shown back is escaped (it is what the person typed)."""

from __future__ import annotations

from collections.abc import Sequence

from connectbatch.escaping import visible


class FilterProblem(ValueError):
    """A filter value a person typed that cannot be used (the message says why)."""


def ids(values: Sequence[object], what: str) -> tuple[int, ...]:
    """Ids chosen or typed into a multiselect that accepts new options."""
    out: list[int] = []
    for value in values:
        try:
            out.append(int(str(value).strip()))
        except ValueError:
            raise FilterProblem(f"{what} {visible(str(value))!r} is not a number") from None
    return tuple(out)
