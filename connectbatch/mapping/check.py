"""Does a file's header still match the saved mapping? If not, say what changed and what
the mapping should become, so the analyst fixes it in one step instead of guessing."""

from __future__ import annotations

import json

from connectbatch.escaping import visible
from connectbatch.mapping.sample import Sample
from connectbatch.mapping.suggest import suggest


def _key(name: str) -> str:
    return name.strip().lower()


def vanished(header: list[str], columns: dict[str, str | None]) -> list[str]:
    """Mapped partner columns (target not None) the header no longer has, under either the
    partner's name or ours."""
    present = {_key(h) for h in header}
    return [
        partner for partner, ours in columns.items()
        if ours is not None and _key(partner) not in present and _key(ours) not in present
    ]  # fmt: skip


def mismatch_message(
    sample: Sample, columns: dict[str, str | None], version: int, data_type: str
) -> str | None:
    """None when every mapped column is still there; else the reason the file is refused,
    with the suggested mapping for the new header."""
    gone = vanished(sample.header, columns)
    if not gone:
        return None
    known = {_key(k) for k in columns}
    new = [h for h in sample.header if h.strip() and _key(h) not in known]
    proposal = suggest(sample, data_type)
    update = {h: t for h, t in proposal.mapping.items() if _key(h) not in known or h in gone}
    parts = [
        f"the header no longer matches field mapping version {version}: "
        + ", ".join(f"{visible(g)!r} (-> {columns[g]})" for g in gone)
        + (" is" if len(gone) == 1 else " are")
        + " missing"
    ]
    if new:
        parts.append("new columns: " + ", ".join(repr(visible(h)) for h in new))
    parts.append(
        "suggested update: "
        + visible(json.dumps(update or proposal.mapping, ensure_ascii=False))
        + " (review it with `connectbatch connection mapping suggest` or on the connection's Mapping tab)"
    )
    return "; ".join(parts)
