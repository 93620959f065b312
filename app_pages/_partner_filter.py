"""The partner filter the partner screens share (issue 11): a multiselect of partner names
(escaped: partner text), whose value is the chosen partner ids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from connectbatch.escaping import visible


def choose(choices: Sequence[tuple[int, str]], key: str, where: Any = st) -> tuple[int, ...]:
    """The partner ids chosen among `choices` ((id, name), in the order offered); none = any.
    `where` is the container to draw in (st or a column)."""
    names = dict(choices)
    chosen = where.multiselect(
        "Partner", list(names), key=key, placeholder="All partners",
        format_func=lambda i: visible(names.get(i, str(i))),
        help="The partner whose connection delivered the data",
    )  # fmt: skip
    return tuple(int(i) for i in chosen)
