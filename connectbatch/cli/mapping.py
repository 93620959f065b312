"""`connectbatch connection mapping`: suggest, save and show a connection's field mapping.

    connectbatch connection mapping suggest N FILE [--rows R] [--json]   (nothing is saved)
    connectbatch connection mapping set N --from-json F                 (a new version)
    connectbatch connection mapping show N [--json]

`set` reads the `suggest --json` document as it is (confidence and reasons are ignored),
optionally with "constants": {"CampaignId": "1234"}, or a bare {"header": "column"} object.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from connectbatch.cli import common as cc
from connectbatch.cli.common import EXIT_OK, PROG
from connectbatch.errors import ConfigurationError
from connectbatch.escaping import visible
from connectbatch.mapping.sample import SAMPLE_BYTES
from connectbatch.parser import containers
from connectbatch.store.mappings import SavedMapping


def _sample_bytes(path: str) -> bytes:
    """What the suggestion reads of the file: the start of a plain file (the sample never
    looks further), an archive whole (a zip's index is at its end). The whole file was read
    into memory: a partner's 2 GB export took 2 GB, and `/dev/zero` every byte there was."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(SAMPLE_BYTES * 4)
            return head + fh.read() if containers.is_container(head[: containers.SNIFF_BYTES]) else head
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror or exc}") from None


def _suggest(args: argparse.Namespace) -> int:
    svc = cc.services()
    try:
        suggestion = svc.suggest_mapping(args.connection, _sample_bytes(args.file), rows=args.rows)
    except csv.Error as exc:  # the header's delimiter sniffing (mapping/sample.py) lets it out
        raise ConfigurationError(f"{args.file} cannot be read as CSV: {exc}") from None
    if args.json:
        cc.print_json(suggestion.to_json())
        return EXIT_OK
    for line in suggestion.lines:
        flag = "?" if line.unsure else " "
        target = line.target or "(ignore)"
        print(
            f"{flag} {visible(line.header)!s:40} -> {target:28} {line.confidence:4.2f}  "
            + visible(line.reason)
        )
    if suggestion.preamble:
        print("preamble: " + ", ".join(f"{visible(k)}={visible(v)}" for k, v in suggestion.preamble.items()))
    if suggestion.missing_keys:
        print(
            "key columns no line feeds (the partner must send them; a constant would make "
            "every row a duplicate): " + ", ".join(suggestion.missing_keys)
        )
    if suggestion.missing_required:
        print(
            "required columns no line feeds (give them a constant): " + ", ".join(suggestion.missing_required)
        )
    name = shlex.quote(args.connection)  # pasted into a shell, a name with a space stays one argument
    print(f"nothing saved; save with `{PROG} connection mapping set {name} --from-json F`")
    return EXIT_OK


def _read_document(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:  # it was an "internal error: UnicodeDecodeError"
        raise ConfigurationError(f"{path} is not JSON: it is not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{path} is not JSON: {exc}") from None


def _set(args: argparse.Namespace) -> int:
    svc = cc.services()
    doc = _read_document(args.from_json)
    if not isinstance(doc, dict):
        raise ConfigurationError(
            f'{args.from_json}: expected an object {{"mapping": {{...}}, "constants": {{...}}}}'
        )
    if "mapping" in doc and not isinstance(doc["mapping"], dict):
        # {"mapping": null} was saved as a mapping of a header named "mapping"
        raise ConfigurationError(f'{args.from_json}: "mapping" must be an object {{"header": "Column"}}')
    columns = doc.get("mapping", doc)
    constants = doc.get("constants") if "mapping" in doc else None
    if constants is not None and not isinstance(constants, dict):
        raise ConfigurationError(f'{args.from_json}: "constants" must be an object {{"Column": "value"}}')
    saved = svc.set_mapping(args.connection, columns, constants, actor=cc.actor(args))
    if args.json:
        cc.print_json(saved.to_json())
    else:
        print(f"saved field mapping version {saved.version} of connection {args.connection}")
    return EXIT_OK


def _print(saved: SavedMapping) -> None:
    who = f" by {visible(saved.created_by)}" if saved.created_by else ""
    print(f"field mapping version {saved.version}, saved {cc.when(saved.created_at)}{who}")
    for header, target in saved.columns.items():
        print(f"  {visible(header)!s:40} -> {target or '(ignore)'}")
    for column, value in saved.constants.items():
        print(f"  {column:40} =  {visible(value)} (constant)")


def _show(args: argparse.Namespace) -> int:
    svc = cc.services()
    saved = svc.mapping(args.connection)
    if args.json:
        cc.print_json(saved.to_json() if saved else {"version": None, "mapping": None, "constants": {}})
        return EXIT_OK
    if saved is None:
        print(
            "no field mapping saved; the header must use our column names "
            f"(see `{PROG} connection mapping suggest`)"
        )
        return EXIT_OK
    _print(saved)
    return EXIT_OK


def configure(sub: cc.SubParsers) -> None:
    """Add `mapping suggest|set|show` under the `connection` command."""
    p = sub.add_parser("mapping", help="suggest, save or show the field mapping", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    msub = p.add_subparsers(dest="mapping_command", metavar="SUBCOMMAND", required=True)
    suggest = cc.leaf(msub, "suggest", "propose a mapping from a sample file (nothing is saved)", _suggest)
    suggest.add_argument("connection", metavar="N", help="connection name or id")
    suggest.add_argument("file", metavar="FILE", help="a sample file from the partner")
    suggest.add_argument("--rows", type=cc.positive, default=50, metavar="R", help="rows to read (50)")
    cc.json_flag(suggest)
    setp = cc.leaf(msub, "set", "save a mapping as the connection's new version", _set)
    setp.add_argument("connection", metavar="N", help="connection name or id")
    setp.add_argument("--from-json", required=True, metavar="F", help="JSON file ('-': standard input)")
    setp.add_argument("--actor", metavar="WHO", help="who saves it (default: the login name)")
    cc.json_flag(setp)
    show = cc.leaf(msub, "show", "show the connection's current mapping", _show)
    show.add_argument("connection", metavar="N", help="connection name or id")
    cc.json_flag(show)
