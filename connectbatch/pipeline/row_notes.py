"""What the results file says of a loaded row that made no action of its own.

A call or a sale answers with its ActionId (`load.row_actions`, store/actions.of_file_by_line).
The rows of the data types without actions need words instead, or every one reads ACCEPTED
with no reason, whatever happened to it (partner audits): a modifications file's event that
was already in effect changed nothing; a catalog item (or a click on a supersede connection)
identical to the stored one changed nothing, and one that differs replaced the stored
version. A row that added a new record says nothing: that is what ACCEPTED means.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

# A results line of a record sent again exactly as stored that names an action it did not create.
UNCHANGED = "unchanged: identical to the record already loaded; its action stays as it is"
IN_EFFECT = "unchanged: the action already stands so (the same event sent before); nothing changed"
APPLIED_BEFORE = (
    "unchanged: an earlier file made this same change, and the change made since stands; to make "
    "it again, send it with a ModificationDate after that change"
)
SAME_RECORD = "unchanged: identical to the record already stored"
REPLACED = "updated: replaces the stored record (its previous version is kept in the history)"


def noted(notes: Iterable[tuple[int, str]]) -> pa.Table:
    """`notes` (file line, note) as `load.row_actions` answers them: `line`, `label` (none)
    and `note`, in line order (results.RowActions reads them by line)."""
    pairs = sorted(notes)
    return pa.table(
        {
            "line": pa.array([line for line, _ in pairs], pa.int64()),
            "label": pa.nulls(len(pairs), pa.string()),
            "note": pa.array([note for _, note in pairs], pa.string()),
        }
    )
