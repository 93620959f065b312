"""The files inside Outlook's rich-text wrapper (TNEF, ``winmail.dat``).

Outlook sending "Rich Text" (and Exchange relaying such a mail) puts the real attachments in
one ``application/ms-tnef`` part. A partner rarely knows: it attached the CSV and sees it in
its Sent folder. So the files are taken out of the wrapper, as a mail client that reads TNEF
would show them; a wrapper that cannot be read keeps the stand-in that tells the sender what
to change (`history.TNEF_HELP`).

The format (MS-OXTNEF): a signature, a key, then attributes one after another: a level
(1 message, 2 attachment), an id, a length, that many bytes and a checksum (some writers
leave off the last one). An attachment starts with `attAttachRendData`; its bytes are
`attAttachData` or, from newer Outlook, the MAPI property PR_ATTACH_DATA_OBJ of
`attAttachment`, where its long name (the one the partner gave it) is too; `attAttachTitle`
is its 8.3 name. An attached mail (an Outlook item) is no file. Read here in one pass over
views of the part, with every count checked against the bytes left: the wrapper is
partner-controlled bytes, and the one PyPI reader (tnefparse) copies the rest of the data for
every attribute (quadratic in a wrapper of many tiny attributes) and loops on a MAPI property
count taken as it is. On tnefparse's 20 sample wrappers from real mailers this reader finds
the same files, names and bytes, except an attached mail (left out here), OLE objects (kept
whole here, 418-430 bytes shorter there) and a missing last checksum (two bytes short there).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from typing import Final

SIGNATURE: Final = 0x223E9F78
LEVEL_MESSAGE: Final = 1
LEVEL_ATTACHMENT: Final = 2
OEM_CODEPAGE: Final = 0x9007  # attOemCodepage (message level): how 8-bit names are written
REND_DATA: Final = 0x9002  # attAttachRendData: an attachment starts
TITLE: Final = 0x8010  # attAttachTitle: its short name
DATA: Final = 0x800F  # attAttachData: its bytes
MAPI_PROPS: Final = 0x9005  # attAttachment: its MAPI properties
LONG_FILENAME: Final = 0x3707  # PR_ATTACH_LONG_FILENAME: the name the partner gave the file
FILENAME: Final = 0x3704  # PR_ATTACH_FILENAME
DISPLAY_NAME: Final = 0x3001  # PR_DISPLAY_NAME
DATA_OBJECT: Final = 0x3701  # PR_ATTACH_DATA_OBJ: the bytes, where newer Outlook puts them
_NAMES: Final = (LONG_FILENAME, FILENAME, DISPLAY_NAME)
# An attached mail (not a file) starts its PR_ATTACH_DATA_OBJ with IID_IMessage.
EMBEDDED_MESSAGE: Final = bytes.fromhex("0703020000000000c000000000000046")
MAX_ATTRIBUTES: Final = 100_000  # far over any real wrapper's; a bound on the work

_HEAD: Final = 6  # signature and key
_ATTRIBUTE: Final = 11  # level, id, length and checksum around the bytes
# MAPI property types: the bytes of one fixed-size value, and the variable-size ones
_FIXED: Final = {0x0003: 4, 0x0004: 4, 0x000A: 4, 0x0005: 8, 0x0006: 8,
                 0x0007: 8, 0x0014: 8, 0x0040: 8, 0x0048: 16, 0x0001: 0}  # fmt: skip
_STRING8, _UNICODE = 0x001E, 0x001F
_VARIABLE: Final = {_STRING8, _UNICODE, 0x0102, 0x000D}
_MULTI: Final = 0x1000


class NotReadable(ValueError):
    """The part is not a TNEF wrapper this reader can take files out of."""


@dataclass(frozen=True)
class Inner:
    """A file inside the wrapper: its name, as the partner gave it where known, and its bytes."""

    name: str
    data: bytes


def files(data: bytes) -> list[Inner]:
    """The files in a TNEF wrapper, in order (an attachment without bytes, such as an
    embedded message, is left out). Raises NotReadable when it is not one."""
    view = memoryview(data)
    if len(view) < _HEAD or int.from_bytes(view[:4], "little") != SIGNATURE:
        raise NotReadable("no TNEF signature")
    codepage = "cp1252"
    found: list[_Found] = []
    offset, count = _HEAD, 0
    while len(view) - offset >= _ATTRIBUTE:  # a few bytes of padding may follow the last
        level, name = view[offset], int.from_bytes(view[offset + 1 : offset + 3], "little")
        length = int.from_bytes(view[offset + 5 : offset + 9], "little")
        start = offset + 9
        if length > len(view) - start:  # (the last one's checksum is sometimes left off)
            raise NotReadable("an attribute runs past the end")
        count += 1
        if count > MAX_ATTRIBUTES:
            raise NotReadable(f"more than {MAX_ATTRIBUTES:,} attributes")
        body = view[start : start + length]
        if level == LEVEL_MESSAGE and name == OEM_CODEPAGE and length >= 4:
            codepage = _codec(int.from_bytes(body[:4], "little"))
        elif level == LEVEL_ATTACHMENT:
            if name == REND_DATA:
                found.append(_Found())
            elif not found:
                raise NotReadable("an attachment's attribute before its start")
            elif name == DATA:
                found[-1].data = bytes(body)
            elif name == TITLE:
                found[-1].title = _text(bytes(body), codepage)
            elif name == MAPI_PROPS:
                found[-1].props.update(_properties(body, codepage))
        offset = start + length + 2
    return [inner for f in found if (inner := f.inner()) is not None]


@dataclass
class _Found:
    """What was read of one attachment: its attributes and the MAPI properties kept."""

    title: str = ""
    data: bytes | None = None
    props: dict[int, str | bytes] = field(default_factory=dict)

    def inner(self) -> Inner | None:
        """The file, named as the partner named it (long name, file name, 8.3 title, display
        name), with the bytes of PR_ATTACH_DATA_OBJ where given, else of attAttachData;
        None for an attached mail or an attachment without bytes."""
        data = self.props.get(DATA_OBJECT, self.data)
        if not isinstance(data, bytes) or data.startswith(EMBEDDED_MESSAGE):
            return None
        names = [
            self.props.get(LONG_FILENAME),
            self.props.get(FILENAME),
            self.title,
            self.props.get(DISPLAY_NAME),
        ]
        return Inner(next((n for n in names if isinstance(n, str) and n), ""), data)


def _codec(codepage: int) -> str:
    name = f"cp{codepage}"
    try:
        codecs.lookup(name)
    except LookupError:
        return "cp1252"
    return name


def _text(raw: bytes, codepage: str) -> str:
    return raw.split(b"\0", 1)[0].decode(codepage, errors="replace")


def _properties(props: memoryview, codepage: str) -> dict[int, str | bytes]:
    """The names (`_NAMES`, first value) and PR_ATTACH_DATA_OBJ among an attachment's MAPI
    properties. Stops at the first value that does not fit in what is left, or of a type of
    unknown size (nothing after it can be read either)."""
    kept: dict[int, str | bytes] = {}
    if len(props) < 4:
        return kept
    total, at = int.from_bytes(props[:4], "little"), 4
    for _ in range(min(total, len(props) // 4)):  # every property takes 4 bytes at least
        if len(props) - at < 4:
            return kept
        kind = int.from_bytes(props[at : at + 2], "little")
        prop = int.from_bytes(props[at + 2 : at + 4], "little")
        at += 4
        if prop >= 0x8000:  # a named property: its GUID, then a number or a name
            if len(props) - at < 24:
                return kept
            by_string = int.from_bytes(props[at + 16 : at + 20], "little") == 1
            at += 20
            at += 4 + (_padded(int.from_bytes(props[at : at + 4], "little")) if by_string else 0)
        multi = bool(kind & _MULTI)
        kind &= ~_MULTI
        if kind in _VARIABLE or multi:  # a count of values first (one for a single value)
            if len(props) - at < 4:
                return kept
            values, at = int.from_bytes(props[at : at + 4], "little"), at + 4
        else:
            values = 1
        if kind in _VARIABLE:
            for _ in range(min(values, len(props) // 4)):
                size = int.from_bytes(props[at : at + 4], "little") if len(props) - at >= 4 else len(props)
                value, at = props[at + 4 : at + 4 + size], at + 4 + _padded(size)
                if at > len(props):
                    return kept
                if prop in kept:
                    continue
                if prop in _NAMES and kind in (_STRING8, _UNICODE):
                    encoding = "utf-16-le" if kind == _UNICODE else codepage
                    kept[prop] = bytes(value).decode(encoding, errors="replace").split("\0", 1)[0]
                elif prop == DATA_OBJECT and not multi:
                    kept[prop] = bytes(value)
        elif kind in (0x0002, 0x000B):  # 2-byte values, padded to 4 together
            at += _padded(2 * values)
        elif kind in _FIXED:
            at += _FIXED[kind] * values
        else:
            return kept
    return kept


def _padded(size: int) -> int:
    return size + (-size % 4)
