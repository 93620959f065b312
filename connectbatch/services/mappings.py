"""Field mappings of a connection: suggest one from a sample file, save a new version
(checked against the data type), read the current one and its history."""

from __future__ import annotations

from typing import Any

from connectbatch import schemas
from connectbatch.errors import ConfigurationError
from connectbatch.mapping import constants as mapping_constants
from connectbatch.mapping.sample import read_sample
from connectbatch.mapping.suggest import Suggestion, suggest
from connectbatch.models import Role
from connectbatch.services.base import InvalidInputError, ServiceBase, requires
from connectbatch.store import mappings as mapping_store
from connectbatch.store.mappings import SavedMapping


def checked_columns(data_type: str, columns: Any) -> dict[str, str | None]:
    """Partner header -> our column (canonical spelling) or None. Refuses what the parser
    could not apply: a target that is not a column, one column fed twice, a header twice."""
    dtype = schemas.get(data_type)
    if not isinstance(columns, dict):
        raise InvalidInputError("mapping", 'expected an object {"partner header": "our column" or null}')
    by_lower = {c.name.lower(): c.name for c in dtype.columns}
    out: dict[str, str | None] = {}
    fed_by: dict[str, str] = {}
    seen: dict[str, str] = {}
    for header, target in columns.items():
        name = str(header).strip()
        if not name:
            raise InvalidInputError("mapping", "a partner header is empty")
        if name.lower() in seen:
            raise InvalidInputError(
                "mapping", f"the header {name!r} is listed twice (as {seen[name.lower()]!r})"
            )
        seen[name.lower()] = name
        if target is None or (isinstance(target, str) and not target.strip()):
            out[name] = None
            continue
        if not isinstance(target, str):
            raise InvalidInputError("mapping", f"{name!r}: the target must be a column name or null")
        ours = by_lower.get(target.strip().lower())
        if ours is None:
            raise InvalidInputError(
                "mapping", f"{name!r} -> {target!r}: {target!r} is not a column of {dtype.label} "
                f"(columns: {', '.join(dtype.column_names)})",
            )  # fmt: skip
        if ours in fed_by:
            raise InvalidInputError(
                "mapping", f"{ours} is mapped twice: from {fed_by[ours]!r} and from {name!r}"
            )
        fed_by[ours] = name
        out[name] = ours
    return out


class MappingServices(ServiceBase):
    def suggest_mapping(self, name_or_id: str | int, data: bytes, rows: int = 50) -> Suggestion:
        """A proposed mapping for a sample file of the connection (nothing is saved)."""
        connection = self.connection(name_or_id)
        sample = read_sample(data, encoding=connection.encoding, delimiter=connection.delimiter, rows=rows)
        return suggest(sample, connection.data_type)

    def mapping(self, name_or_id: str | int) -> SavedMapping | None:
        """The connection's current mapping (None: never saved)."""
        connection = self.connection(name_or_id)
        with self.db.connect() as con:
            return mapping_store.current(con, connection.id)

    def mapping_versions(self, name_or_id: str | int) -> list[SavedMapping]:
        connection = self.connection(name_or_id)
        with self.db.connect() as con:
            return mapping_store.versions(con, connection.id)

    @requires(Role.ANALYST)
    def set_mapping(
        self,
        name_or_id: str | int,
        columns: dict[str, str | None],
        constants: dict[str, str] | None = None,
        actor: str | None = None,
    ) -> SavedMapping:
        """Save a new version of the connection's mapping; it becomes its column_map."""
        connection = self.connection(name_or_id)
        checked = checked_columns(connection.data_type, columns)
        try:
            consts = mapping_constants.check(schemas.get(connection.data_type), dict(constants or {}))
        except ConfigurationError as exc:
            raise InvalidInputError("constants", str(exc)) from None
        with self.db.transaction() as con:
            return mapping_store.add(con, connection.id, checked, consts, self.actor(actor) or None)
