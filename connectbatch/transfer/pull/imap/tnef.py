"""The files inside Outlook's rich-text wrapper (TNEF, ``winmail.dat``).

Outlook sending "Rich Text" (and Exchange relaying such a mail) puts the real attachments in
one ``application/ms-tnef`` part. A partner rarely knows: it attached the CSV and sees it in
its Sent folder. So the files are taken out of the wrapper, as a mail client that reads TNEF
would show them; a wrapper that cannot be read keeps the stand-in that tells the sender what
to change (`history.TNEF_HELP`).

The format (MS-OXTNEF): a signature, a key, then attributes one after another: a level
(1 message, 2 attachment), an id, a length, that many bytes and a checksum. An attachment
starts with `attAttachRendData`; its bytes are `attAttachData`, its short (8.3) name
`attAttachTitle`, and its long name, the one the partner gave it, is a MAPI property of
`attAttachment`. Read here in one pass over views of the part, with every count checked
against the bytes left: the wrapper is partner-controlled bytes, and the one PyPI reader
(tnefparse) copies the rest of the data for every attribute (quadratic in a wrapper of many
tiny attributes) and loops on a MAPI property count taken as it is.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Final

SIGNATURE: Final = 0x223E9F78
LEVEL_MESSAGE: Final = 1
LEVEL_ATTACHMENT: Final = 2
OEM_CODEPAGE: Final = 0x9007  # attOemCodepage (message level): how 8-bit names are written
REND_DATA: Final = 0x9002  # attAttachRendData: an attachment starts
TITLE: Final = 0x8010  # attAttachTitle: its short name
DATA: Final = 0x800F  # attAttachData: its bytes
MAPI_PROPS: Final = 0x9005  # attAttachment: its MAPI properties
LONG_FILENAME: Final = 0x3707  # PR_ATTACH_LONG_FILENAME
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
    """A file inside the wrapper: its name (long if given, else short) and its bytes."""

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
        if length > len(view) - start - 2:
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
                found[-1].long = _long_filename(body, codepage) or found[-1].long
        offset = start + length + 2
    return [Inner(f.long or f.title, f.data) for f in found if f.data is not None]


@dataclass
class _Found:
    """What was read of one attachment so far."""

    title: str = ""
    long: str = ""
    data: bytes | None = None


def _codec(codepage: int) -> str:
    name = f"cp{codepage}"
    try:
        codecs.lookup(name)
    except LookupError:
        return "cp1252"
    return name


def _text(raw: bytes, codepage: str) -> str:
    return raw.split(b"\0", 1)[0].decode(codepage, errors="replace")


def _long_filename(props: memoryview, codepage: str) -> str | None:
    """PR_ATTACH_LONG_FILENAME among an attachment's MAPI properties, or None. Stops at the
    first value that does not fit in what is left (nothing after it can be read either)."""
    if len(props) < 4:
        return None
    total, at = int.from_bytes(props[:4], "little"), 4
    for _ in range(min(total, len(props) // 4)):  # every property takes 4 bytes at least
        if len(props) - at < 4:
            return None
        kind = int.from_bytes(props[at : at + 2], "little")
        prop = int.from_bytes(props[at + 2 : at + 4], "little")
        at += 4
        if prop >= 0x8000:  # a named property: its GUID, then a number or a name
            if len(props) - at < 24:
                return None
            by_string = int.from_bytes(props[at + 16 : at + 20], "little") == 1
            at += 20
            at += 4 + (_padded(int.from_bytes(props[at : at + 4], "little")) if by_string else 0)
        multi = bool(kind & _MULTI)
        kind &= ~_MULTI
        if kind in _VARIABLE or multi:  # a count of values first (one for a single value)
            if len(props) - at < 4:
                return None
            values, at = int.from_bytes(props[at : at + 4], "little"), at + 4
        else:
            values = 1
        if kind in _VARIABLE:
            for _ in range(min(values, len(props) // 4)):
                size = int.from_bytes(props[at : at + 4], "little") if len(props) - at >= 4 else len(props)
                value, at = props[at + 4 : at + 4 + size], at + 4 + _padded(size)
                if at > len(props):
                    return None
                if prop == LONG_FILENAME and kind in (_STRING8, _UNICODE):
                    encoding = "utf-16-le" if kind == _UNICODE else codepage
                    return bytes(value).decode(encoding, errors="replace").split("\0", 1)[0] or None
        elif kind in (0x0002, 0x000B):  # 2-byte values, padded to 4 together
            at += _padded(2 * values)
        elif kind in _FIXED:
            at += _FIXED[kind] * values
        else:
            return None  # a type of unknown size
    return None


def _padded(size: int) -> int:
    return size + (-size % 4)
