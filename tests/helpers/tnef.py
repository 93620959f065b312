"""Outlook's winmail.dat (TNEF, MS-OXTNEF) built for tests: the attributes Outlook writes for
each attached file (its rendering data, short title, bytes and MAPI properties with the long
file name), so the pull's reader (connectbatch/transfer/pull/imap/tnef.py) meets the shape a
real wrapper has. tests/unit/test_tnef.py reads what this writes with tnefparse too, an
independent reader, so a mistake made twice (here and in ours) does not pass unseen."""

from __future__ import annotations

import struct
from email.message import EmailMessage

SIGNATURE = 0x223E9F78
_TYPES = {"dword": 0x0008, "string": 0x0001, "byte": 0x0006, "date": 0x0003, "word": 0x0004}


def attribute(level: int, name: int, kind: str, data: bytes) -> bytes:
    """One attribute: level, id (type << 16 | name), length, bytes, checksum."""
    ident = (_TYPES[kind] << 16) | name
    return struct.pack("<BII", level, ident, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)


def mapi_string(prop: int, text: str, unicode: bool = True) -> bytes:
    """One MAPI string property (PT_UNICODE or PT_STRING8) as TNEF writes it."""
    raw = text.encode("utf-16-le" if unicode else "cp1252") + (b"\0\0" if unicode else b"\0")
    pad = b"\0" * (-len(raw) % 4)
    kind = 0x001F if unicode else 0x001E
    return struct.pack("<HHII", kind, prop, 1, len(raw)) + raw + pad


def mapi_binary(prop: int, data: bytes, kind: int = 0x0102) -> bytes:
    """One MAPI binary property (PT_BINARY; PT_OBJECT with `kind` 0x000D)."""
    return struct.pack("<HHII", kind, prop, 1, len(data)) + data + b"\0" * (-len(data) % 4)


def mapi_props(*props: bytes) -> bytes:
    return struct.pack("<I", len(props)) + b"".join(props)


def winmail(
    files: list[tuple[str, bytes]],
    *,
    short_names: bool = False,
    codepage: int = 1252,
    data_object: bool = False,
    checksum_at_end: bool = True,
) -> bytes:
    """A wrapper holding `files` (name, bytes): each with an 8.3 title and, unless
    `short_names`, its long name as PR_ATTACH_LONG_FILENAME (after a 4-byte and a named
    property, as Outlook writes others before it). `data_object`: the bytes as newer Outlook
    writes them, in PR_ATTACH_DATA_OBJ, not attAttachData. Without `checksum_at_end` the last
    attribute's checksum is left off, as some writers do."""
    out = struct.pack("<IH", SIGNATURE, 0x0001)
    out += attribute(1, 0x9006, "dword", struct.pack("<I", 0x00010000))  # attTnefVersion
    out += attribute(1, 0x9007, "byte", struct.pack("<II", codepage, 0))  # attOemCodepage
    out += attribute(1, 0x8008, "string", b"IPM.Microsoft Mail.Note\0")  # attMessageClass
    for name, data in files:
        stem, _, ext = name.rpartition(".")
        title = f"{stem[:6].upper()}~1.{ext[:3].upper()}".encode(f"cp{codepage}", "replace") + b"\0"
        out += attribute(2, 0x9002, "byte", struct.pack("<HIIIIHH", 1, 0xFFFFFFFF, 0, 0, 0, 0, 0))
        out += attribute(2, 0x8010, "string", title)
        if not data_object:
            out += attribute(2, 0x800F, "byte", data)
        props = [
            struct.pack("<HHI", 0x0003, 0x0E21, 7),  # PR_ATTACH_NUM
            struct.pack("<HH", 0x0003, 0x8001) + b"\x11" * 16 + struct.pack("<II", 0, 0x8501) + b"\0" * 4,
        ]
        if not short_names:
            props.append(mapi_string(0x3707, name))
        if data_object:
            props.append(mapi_binary(0x3701, data))
        out += attribute(2, 0x9005, "byte", mapi_props(*props))
    return out if checksum_at_end else out[:-2]


def mail(to: str, wrapper: bytes) -> EmailMessage:
    """A partner's mail as Outlook sends it in Rich Text: its files inside winmail.dat."""
    message = EmailMessage()
    message["From"] = "ops@partner.example"
    message["To"] = to
    message["Subject"] = "calls"
    message.set_content("see attached")
    message.add_attachment(wrapper, maintype="application", subtype="ms-tnef", filename="winmail.dat")
    return message
