"""The `connectbatch partner` command: the businesses connections belong to.

    connectbatch partner add NAME --type vendor|publisher|agency|brand [--email E]
                                  [--contacts TEXT] [--notes TEXT] [--media-id N ...]
    connectbatch partner list | show NAME | edit NAME [...] | delete NAME [--yes]

A partner cannot be deleted while connections belong to it (the error names them).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from connectbatch.cli import common as cc
from connectbatch.cli.common import EXIT_OK, PROG, Command
from connectbatch.errors import ConfigurationError
from connectbatch.models import PARTNER_TYPE_LABELS, Partner, PartnerType
from connectbatch.services import InvalidInputError

_FLAGS = {"name": "--name", "type": "--type", "return_email": "--email", "contacts": "--contacts",
          "notes": "--notes", "media_ids": "--media-id"}  # fmt: skip


def _partner_dict(p: Partner) -> dict[str, Any]:
    return {**dataclasses.asdict(p), "type": str(p.type)}


def _flagged(exc: InvalidInputError) -> ConfigurationError:
    """Name the option, not the service's field, in a rejected value."""
    message = str(exc).removeprefix(f"{exc.field}: ")
    return ConfigurationError(f"{_FLAGS.get(exc.field, exc.field)}: {message}")


def _print_partner(p: Partner, connections: list[tuple[int, str, str]]) -> None:
    print(f"partner {p.id}: {cc.one_line(p.name)}")
    cc.fields(
        [
            ("type", PARTNER_TYPE_LABELS[p.type]),
            ("return e-mail", cc.one_line(p.return_email)),
            ("contacts", cc.one_line(p.contacts)),
            ("notes", cc.one_line(p.notes)),
            ("media ids", ", ".join(str(m) for m in p.media_ids) or "-"),
            ("connections", ", ".join(f"{i} {cc.one_line(n)} ({d})" for i, n, d in connections) or "-"),
            ("created", cc.when(p.created_at)),
            ("updated", cc.when(p.updated_at)),
        ]
    )


def _partner_add(args: argparse.Namespace) -> int:
    try:
        partner = cc.services().add_partner(
            args.name, args.type, contacts=args.contacts, return_email=args.email, notes=args.notes,
            media_ids=args.media_id,
        )  # fmt: skip
    except InvalidInputError as exc:
        raise _flagged(exc) from None
    if args.json:
        cc.print_json(_partner_dict(partner))
        return EXIT_OK
    print(f"added partner {partner.id}: {cc.one_line(partner.name)} ({PARTNER_TYPE_LABELS[partner.type]})")
    return EXIT_OK


def _partner_list(args: argparse.Namespace) -> int:
    svc = cc.services()
    partners = svc.partners()
    counts: dict[int, int] = {}
    for c in svc.connections():
        if c.partner_id is not None:
            counts[c.partner_id] = counts.get(c.partner_id, 0) + 1
    if args.json:
        cc.print_json([{**_partner_dict(p), "connections": counts.get(p.id, 0)} for p in partners])
        return EXIT_OK
    if not partners:
        print(f"no partners yet: add one with `{PROG} partner add NAME --type brand`")
        return EXIT_OK
    rows = [
        [str(p.id), cc.one_line(p.name), str(p.type), cc.one_line(p.return_email), str(counts.get(p.id, 0))]
        for p in partners
    ]
    cc.table(["ID", "NAME", "TYPE", "RETURN E-MAIL", "CONNECTIONS"], rows, right=[0, 4])
    return EXIT_OK


def _partner_show(args: argparse.Namespace) -> int:
    svc = cc.services()
    partner = svc.partner(args.partner)
    owned = svc.partner_connections(partner.id)
    if args.json:
        cc.print_json(
            {**_partner_dict(partner),
             "connections": [{"id": c.id, "name": c.name, "direction": str(c.direction),
                              "data_type": c.data_type} for c in owned]}
        )  # fmt: skip
        return EXIT_OK
    _print_partner(partner, [(c.id, c.name, str(c.direction)) for c in owned])
    return EXIT_OK


def _partner_edit(args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {}
    for dest, field in (("new_name", "name"), ("type", "type"), ("email", "return_email"),
                        ("contacts", "contacts"), ("notes", "notes")):  # fmt: skip
        value = getattr(args, dest, None)
        if value is not None:
            changes[field] = value if field in ("name", "type") else (value or None)
    if args.media_id is not None or args.no_media_ids:
        changes["media_ids"] = [] if args.no_media_ids else args.media_id
    if not changes:
        raise ConfigurationError(
            f"nothing to change: give at least one option (see `{PROG} partner edit --help`)"
        )
    try:
        partner = cc.services().update_partner(args.partner, **changes)
    except InvalidInputError as exc:
        raise _flagged(exc) from None
    if args.json:
        cc.print_json(_partner_dict(partner))
        return EXIT_OK
    print(f"updated partner {partner.id}: {cc.one_line(partner.name)} ({PARTNER_TYPE_LABELS[partner.type]})")
    return EXIT_OK


def _partner_delete(args: argparse.Namespace) -> int:
    svc = cc.services()
    partner = svc.partner(args.partner)
    if not args.yes:
        raise ConfigurationError(f"not deleting partner {partner.name!r} without --yes")
    svc.delete_partner(partner.id)
    if args.json:
        cc.print_json({"deleted": {"id": partner.id, "name": partner.name}})
    else:
        print(f"deleted partner {partner.id}: {cc.one_line(partner.name)}")
    return EXIT_OK


def _details(p: argparse.ArgumentParser, *, editing: bool) -> None:
    types = [t.value for t in PartnerType]
    if editing:
        p.add_argument("--name", dest="new_name", metavar="NAME", help="a new name")
        p.add_argument("--type", choices=types, help="what kind of partner")
    else:
        p.add_argument("--type", choices=types, required=True, help="what kind of partner")
    clears = "; '' clears it" if editing else ""
    p.add_argument("--email", metavar="E", help="return e-mail address" + clears)
    p.add_argument("--contacts", metavar="TEXT", help="contact names, e-mail addresses, phone numbers")
    p.add_argument("--notes", metavar="TEXT", help="free notes")
    p.add_argument(
        "--media-id", metavar="N", action="append", type=cc.whole,
        help="a publisher's platform MediaId (repeatable): screens show the partner's name for it"
        + ("; the ones given replace the partner's MediaIds" if editing else ""),
    )  # fmt: skip
    if editing:
        p.add_argument("--no-media-ids", action="store_true", help="remove the partner's MediaIds")
    cc.json_flag(p)


def _configure_partner(p: argparse.ArgumentParser) -> None:
    sub = cc.subcommands(p)
    add = cc.leaf(sub, "add", "add a partner", _partner_add)
    add.add_argument("name", metavar="NAME")
    _details(add, editing=False)
    cc.json_flag(cc.leaf(sub, "list", "list the partners", _partner_list))
    show = cc.leaf(sub, "show", "show a partner and its connections", _partner_show)
    show.add_argument("partner", metavar="NAME", help="partner name or id")
    cc.json_flag(show)
    edit = cc.leaf(sub, "edit", "change a partner (only the options given)", _partner_edit)
    edit.add_argument("partner", metavar="NAME", help="partner name or id")
    _details(edit, editing=True)
    delete = cc.leaf(sub, "delete", "delete a partner without connections", _partner_delete)
    delete.add_argument("partner", metavar="NAME", help="partner name or id")
    delete.add_argument(
        "--yes", action="store_true", help="confirm the deletion (required: nothing is asked)"
    )
    cc.json_flag(delete)


COMMANDS: dict[str, Command] = {
    "partner": Command("add, list, show, edit or delete partners", _configure_partner, cc.dispatch),
}
