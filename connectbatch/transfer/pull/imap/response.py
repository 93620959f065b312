"""Reading imaplib's raw FETCH responses (BODYSTRUCTURE, INTERNALDATE, header fields), and
deciding from a BODYSTRUCTURE whether a message is worth downloading. No network here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final

from connectbatch.transfer.base import server_number


class _Atom(str):
    """An unquoted IMAP atom (a number, NIL, a key like ``BODY[HEADER.FIELDS (TO)]``);
    quoted strings and literals are `bytes`."""


_LPAREN: Final = object()
_RPAREN: Final = object()
_TOKEN = re.compile(
    rb"""\s*(?:
        (?P<lp>\() | (?P<rp>\)) |
        "(?P<quoted>(?:[^"\\]|\\.)*)" |
        (?P<literal>\{\d+\+?\}\s*$) |
        (?P<atom>[^\s()"\[\]{]+(?:\[[^\]]*\][^\s()"\[{]*)*)
    )""",
    re.VERBOSE | re.DOTALL,
)


def _tokens(data: list[Any]) -> Iterator[object]:
    """Tokens of imaplib's FETCH data: `bytes` lines and `(line, literal)` pairs, where the
    line ends with the ``{n}`` that announced the literal."""
    for item in data:
        if item is None:
            continue
        line, literal = (item[0], item[1]) if isinstance(item, tuple) else (item, None)
        pos = 0
        while pos < len(line):
            match = _TOKEN.match(line, pos)
            if match is None or match.end() == pos:
                if line[pos:].strip():
                    raise ValueError(f"cannot read IMAP response near {line[pos : pos + 40]!r}")
                break
            pos = match.end()
            if match.group("lp"):
                yield _LPAREN
            elif match.group("rp"):
                yield _RPAREN
            elif match.group("quoted") is not None:
                yield re.sub(rb"\\(.)", rb"\1", match.group("quoted"))
            elif match.group("atom"):
                yield _Atom(match.group("atom").decode("ascii", errors="replace"))
        if literal is not None:
            yield bytes(literal)


# Lists in lists a FETCH response may nest: a real BODYSTRUCTURE nests a few per MIME level,
# and Dovecot allows 100 levels. A hostile server's 3,000 raised RecursionError out of the pull.
MAX_NESTING = 400


def as_number(value: object) -> int | None:
    """A UID or a size of a FETCH response (an atom or bytes): `base.server_number`."""
    return server_number(as_text(value).strip())


def parse_fetch(data: list[Any]) -> list[dict[str, Any]]:
    """``* n FETCH (KEY value ...)`` responses as dicts with upper-case keys. Values are
    nested lists, `bytes` for strings and literals, `_Atom` for atoms and None for NIL.
    Raises ValueError on a response it cannot read (nested past MAX_NESTING too)."""
    tokens = list(_tokens(data))
    pos = 0

    def value(depth: int = 0) -> Any:
        nonlocal pos
        token = tokens[pos]
        pos += 1
        if token is _LPAREN:
            if depth >= MAX_NESTING:
                raise ValueError(f"lists nested more than {MAX_NESTING} deep")
            items = []
            while tokens[pos] is not _RPAREN:
                items.append(value(depth + 1))
            pos += 1
            return items
        if token is _RPAREN:
            raise ValueError("unbalanced parenthesis in IMAP response")
        if isinstance(token, _Atom) and token.upper() == "NIL":
            return None
        return token

    responses: list[dict[str, Any]] = []
    while pos < len(tokens):
        number = tokens[pos]
        pos += 1
        if not (isinstance(number, _Atom) and number.isdigit()):
            continue  # stray data (e.g. an unsolicited response): skip it
        items = value()
        if not isinstance(items, list):
            continue
        responses.append({str(items[i]).upper(): items[i + 1] for i in range(0, len(items) - 1, 2)})
    return responses


def as_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return "" if value is None else str(value)


# A part of these types is a file whatever its disposition says: a report tool that sends the
# CSV inline and nameless (or as the whole mail) had it recorded as "no attachment".
CSV_TYPES: Final = frozenset(
    {"text/csv", "text/x-csv", "application/csv", "text/comma-separated-values", "text/tab-separated-values"}
)


def may_have_attachments(body: Any) -> bool:
    """Whether a BODYSTRUCTURE can contain a part imap-tools counts as an attachment (one
    with a file name, a Content-ID, or a message/rfc822 type). Only a structure made
    entirely of plain text parts with no name, no Content-ID and no attachment disposition
    says no; anything else, including a structure we cannot read, says yes, so that the
    screen only ever saves downloads and never hides a file."""
    if not isinstance(body, list) or not body:
        return True
    if isinstance(body[0], list):  # multipart: the parts come first, then the subtype
        for part in body:
            if not isinstance(part, list):
                break
            if may_have_attachments(part):
                return True
        return False
    if len(body) < 7 or as_text(body[0]).lower() != "text":
        return True
    if f"text/{as_text(body[1]).lower()}" in CSV_TYPES:  # a file, named or not (`message`)
        return True
    params, body_id = body[2], body[3]
    if body_id is not None:
        return True
    if isinstance(params, list) and any("name" in as_text(key).lower() for key in params[::2]):
        return True
    disposition = body[9] if len(body) > 9 else None  # text: lines, md5, disposition
    return (
        isinstance(disposition, list)
        and bool(disposition)
        and (as_text(disposition[0]).lower() != "inline" or disposition[1:2] != [None])
    )
