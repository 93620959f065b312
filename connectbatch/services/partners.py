"""Partners: add, edit, delete and read them. Every connection belongs to one partner, and
what a connection may reach follows from it: an outbound connection exports only its
partner's data, a modifications file changes only its partner's actions.

Analysts change partners; every logged-in role reads them (lists show partner names)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb

from connectbatch.escaping import visible
from connectbatch.models import Connection, Direction, Partner, PartnerType, Role
from connectbatch.services.base import InvalidInputError, NotFoundError, ServiceBase, _enum, requires
from connectbatch.store import connections as connection_store
from connectbatch.store import exports as export_store
from connectbatch.store import partners as partner_store

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_EDITABLE = ("name", "type", "contacts", "return_email", "notes", "media_ids")
# The partner a new connection gets when none is named and the caller set no default.
PARTNER_REQUIRED = "is required: every connection belongs to a partner (choose one, or add one first)"


def _text(value: str | None, field: str, longest: int) -> str | None:
    cleaned = (value or "").strip()
    if len(cleaned) > longest:
        raise InvalidInputError(field, f"is longer than {longest} characters")
    return cleaned or None


def _contacts(value: str | Sequence[str] | None) -> str | None:
    """Contacts as free text, or a list of names / e-mail addresses (kept one per line)."""
    if value is None or isinstance(value, str):
        return _text(value, "contacts", 2000)
    return _text("\n".join(v.strip() for v in value if v and v.strip()), "contacts", 2000)


def checked_partner(
    name: str,
    type_: PartnerType | str,
    contacts: str | Sequence[str] | None,
    return_email: str | None,
    notes: str | None,
) -> tuple[str, PartnerType, str | None, str | None, str | None]:
    """The fields of a partner, cleaned, or InvalidInputError naming the field."""
    cleaned = (name or "").strip()
    if not cleaned:
        raise InvalidInputError("name", "is required")
    if len(cleaned) > 100:
        raise InvalidInputError("name", "is longer than 100 characters")
    if any(not ch.isprintable() for ch in cleaned):
        raise InvalidInputError("name", "must not contain control characters")
    kind: PartnerType = _enum(PartnerType, type_, "type")
    email = (return_email or "").strip() or None
    if email is not None and not _EMAIL.fullmatch(email):
        raise InvalidInputError("return_email", f"{return_email!r} is not an e-mail address")
    return cleaned, kind, _contacts(contacts), email, _text(notes, "notes", 4000)


def checked_media_ids(values: Sequence[int | str] | None) -> list[int]:
    """A publisher's platform MediaIds, as sorted distinct positive whole numbers, or
    InvalidInputError('media_ids')."""
    out: set[int] = set()
    for value in values or ():
        text = str(value).strip()
        if not text:
            continue
        try:
            number = int(text)
        except ValueError:
            raise InvalidInputError("media_ids", f"{text!r} is not a MediaId (a whole number)") from None
        if not 0 < number < 2**63:
            raise InvalidInputError("media_ids", f"{number} is not a MediaId (a positive number)")
        out.add(number)
    return sorted(out)


def _claim_media(con: duckdb.DuckDBPyConnection, partner_id: int, media_ids: list[int]) -> None:
    """Give the partner `media_ids`, refused (naming the other partner) when one is another's."""
    for media_id, (owner_id, owner) in sorted(partner_store.media_owners(con, media_ids).items()):
        if owner_id != partner_id:
            raise InvalidInputError("media_ids", f"MediaId {media_id} already belongs to {owner!r}")
    partner_store.set_media_ids(con, partner_id, media_ids)


def media_label(media_id: int | None, names: dict[int, str]) -> str:
    """How screens show a MediaId: "Leadwave Media (98765)" where a partner has it, else the
    number (partner text: escape it where it is shown)."""
    if media_id is None:
        return ""
    name = names.get(int(media_id))
    return f"{name} ({media_id})" if name else str(media_id)


def resolve_partner(
    con: duckdb.DuckDBPyConnection, given: str | int | None, default: str | None = None
) -> Partner:
    """The partner a connection is to belong to, by name or id; `default` (a name) is used,
    and created as a brand, when nothing is given. InvalidInputError('partner') otherwise."""
    if given is None or str(given).strip() == "":
        if default is None:
            raise InvalidInputError("partner", PARTNER_REQUIRED)
        found = partner_store.find(con, default)
        return found or partner_store.insert(con, default, PartnerType.BRAND, None, None, None)
    found = partner_store.find(con, str(given))
    if found is None:
        raise InvalidInputError(
            "partner", f"there is no partner named {str(given)!r}: add it first (connectbatch partner add)"
        )
    return found


def check_export_sources(con: duckdb.DuckDBPyConnection, connection: Connection) -> list[int]:
    """An outbound connection's named sources: inbound connections of its own partner and
    data type (never another partner's)."""
    sources = sorted({int(s) for s in connection.export_sources})
    if sources and connection.direction is not Direction.OUTBOUND:
        raise InvalidInputError("export_sources", "only outbound connections export")
    for source_id in sources:
        try:
            source = connection_store.get(con, source_id)
        except LookupError:
            raise InvalidInputError("export_sources", f"there is no connection {source_id}") from None
        if source.direction is not Direction.INBOUND:
            raise InvalidInputError("export_sources", f"{source.name!r} is not an inbound connection")
        if source.partner_id != connection.partner_id:
            raise InvalidInputError(
                "export_sources", f"{source.name!r} belongs to another partner: exports carry only their own"
            )
        if source.data_type != connection.data_type:
            raise InvalidInputError(
                "export_sources", f"{source.name!r} carries {source.data_type}, not {connection.data_type}"
            )
    return sources


def check_movable(con: duckdb.DuckDBPyConnection, connection: Connection, folder: Path) -> None:
    """An outbound "Pull from us" connection that has delivered files stays with its partner:
    its folder holds that partner's rows (exports, status files) and its login, which follows
    it, serves the folder; moved, the other partner would collect them, and whoever holds the
    login would collect the other partner's next exports. One that delivered nothing yet (a
    partner chosen wrongly at setup) may move.

    An inbound connection that has loaded or holds a batch stays too: its rows and actions
    are its partner's, and moved, the other partner's exports would carry them and its
    modification files could change them."""
    if connection.direction is not Direction.OUTBOUND:
        if connection_store.holds_data(con, connection.id):
            raise InvalidInputError(
                "partner",
                f"{visible(connection.name)!r} has loaded files of its partner, whose rows and "
                "actions would go to the other one's exports and modification files: create a "
                "new connection for that partner instead",
            )
        return
    delivered = bool(export_store.of_connection(con, connection.id, limit=1))
    if not delivered and folder.is_dir():
        delivered = any(p.is_file() for p in folder.iterdir())
    if delivered:
        raise InvalidInputError(
            "partner",
            f"{visible(connection.name)!r} has already delivered files of its partner, which its "
            'folder and login would show to the other one: create a new "Pull from us" '
            "connection for that partner instead",
        )


class PartnerServices(ServiceBase):
    def partners(self) -> list[Partner]:
        with self.db.connect() as con:
            return partner_store.list_all(con)

    def partner(self, name_or_id: str | int) -> Partner:
        with self.db.connect() as con:
            found = partner_store.find(con, str(name_or_id))
        if found is None:
            raise NotFoundError(f"there is no partner named {name_or_id!r}")
        return found

    def partner_names(self) -> dict[int, str]:
        """Partner names by id, for lists that show each connection's partner."""
        with self.db.connect() as con:
            return partner_store.names(con)

    def media_names(self) -> dict[int, str]:
        """The partner name of each MediaId a partner has (see `media_label`)."""
        with self.db.connect() as con:
            return partner_store.media_names(con)

    def partner_choices(self) -> list[tuple[int, str]]:
        """(id, name) of the partners owning connections: what a partner filter offers."""
        with self.db.connect() as con:
            return partner_store.with_connections(con)

    def connection_partners(self) -> dict[int, str]:
        """The partner name of each connection, by connection id (lists of actions, runs)."""
        with self.db.connect() as con:
            return partner_store.of_connections(con)

    def partner_overview(self) -> list[tuple[Partner, list[Connection]]]:
        """Every partner with its connections (the partners screen: counts, last active)."""
        with self.db.connect() as con:
            partners = partner_store.list_all(con)
            owned: dict[int, list[Connection]] = {}
            for partner in partners:
                owned[partner.id] = connection_store.of_partner(con, partner.id)
        return [(p, owned[p.id]) for p in partners]

    def partner_connections(self, name_or_id: str | int) -> list[Connection]:
        partner = self.partner(name_or_id)
        with self.db.connect() as con:
            return connection_store.of_partner(con, partner.id)

    @requires(Role.ANALYST)
    def add_partner(
        self,
        name: str,
        type: PartnerType | str,
        contacts: str | Sequence[str] | None = None,
        return_email: str | None = None,
        notes: str | None = None,
        media_ids: Sequence[int | str] | None = None,
    ) -> Partner:
        fields = checked_partner(name, type, contacts, return_email, notes)
        media = checked_media_ids(media_ids)
        with self.db.transaction() as con:
            if partner_store.find(con, fields[0]) is not None:
                raise InvalidInputError("name", f"a partner named {fields[0]!r} already exists")
            created = partner_store.insert(con, *fields)
            if media:
                _claim_media(con, created.id, media)
            return partner_store.get(con, created.id)

    @requires(Role.ANALYST)
    def update_partner(self, name_or_id: str | int, **changes: Any) -> Partner:
        current = self.partner(name_or_id)
        unknown = set(changes) - set(_EDITABLE)
        if unknown:
            raise InvalidInputError(sorted(unknown)[0], "cannot be changed")
        media = checked_media_ids(changes.pop("media_ids", current.media_ids))
        merged = replace(current, **changes)
        name, kind, contacts, email, notes = checked_partner(
            merged.name, merged.type, changes.get("contacts", current.contacts), merged.return_email,
            merged.notes,
        )  # fmt: skip
        with self.db.transaction() as con:
            clash = partner_store.find(con, name)
            if clash is not None and clash.id != current.id:
                raise InvalidInputError("name", f"a partner named {name!r} already exists")
            cleaned = replace(
                current, name=name, type=kind, contacts=contacts, return_email=email, notes=notes
            )
            partner_store.update(con, cleaned)
            _claim_media(con, current.id, media)
            return partner_store.get(con, current.id)

    @requires(Role.ANALYST)
    def delete_partner(self, name_or_id: str | int) -> None:
        """Delete a partner that no connection belongs to any more (refused, naming them,
        while some do: their data and exports depend on it)."""
        current = self.partner(name_or_id)
        with self.db.transaction() as con:
            owned = connection_store.of_partner(con, current.id)
            if owned:
                names = ", ".join(repr(c.name) for c in owned)
                raise InvalidInputError(
                    "partner",
                    f"{current.name!r} still has {len(owned)} connection(s): {names}; "
                    "delete them or move them to another partner first",
                )
            partner_store.delete(con, current.id)
