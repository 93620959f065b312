"""What a file's bytes are before they are text: unpacking .gz and single-member .zip files
(with a size cap against decompression bombs) and refusing, in words, what is no CSV at all
(bzip2, xz, 7-Zip, RAR, tar, PDF, Excel, an archive inside the archive). parser/decode.py
takes the plain payload from here.
"""

from __future__ import annotations

import enum
import gzip
import io
import lzma
import re
import zipfile
import zlib
from typing import BinaryIO

from connectbatch.errors import ParseError
from connectbatch.parser.decode import CHUNK_SIZE, DEFAULT_MAX_BYTES, Readable


class _CappedReader:
    """Reads a (decompressing) stream and fails once more than `limit` bytes came out."""

    def __init__(self, inner: Readable, limit: int) -> None:
        self._inner = inner
        self._limit = limit
        self._seen = 0
        self._pending = b""  # read by `peek`, handed out first

    def peek(self, size: int) -> bytes:
        """The first `size` bytes (fewer if the stream is shorter), read again by `read`."""
        head = b""
        while len(head) < size and (data := self.read(size - len(head))):
            head += data
        self._pending = head
        return head

    def read(self, size: int = CHUNK_SIZE) -> bytes:
        pending, self._pending = self._pending, b""
        if 0 <= size <= len(pending):
            self._pending = pending[size:]
            return pending[:size]
        try:
            data = self._inner.read(size - len(pending) if size >= 0 else -1)
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile, lzma.LZMAError) as exc:
            # lzma's error is no OSError (bz2's is): a damaged LZMA member of a zip failed
            # the file as our own error, and each pull fetched and failed it again
            raise ParseError(f"the compressed file is damaged: {exc}") from exc
        self._seen += len(data)
        if self._seen > self._limit:
            raise ParseError(f"the file is larger than the limit of {self._limit:,} bytes once decompressed")
        return pending + data if pending else data


class Format(enum.Enum):
    """What a file's first bytes say it is when they say it is not text (`sniff`)."""

    GZIP = "gzip"
    ZIP = "ZIP"
    BZIP2 = "bzip2"
    XZ = "xz"
    ZSTD = "Zstandard"
    SEVEN_ZIP = "7-Zip"
    RAR = "RAR"
    TAR = "tar"
    PDF = "PDF"
    XLS = "old Excel (.xls)"


_MAGIC: tuple[tuple[bytes, Format], ...] = (
    (b"\x1f\x8b", Format.GZIP), (b"PK\x03\x04", Format.ZIP), (b"PK\x05\x06", Format.ZIP),
    (b"\xfd7zXZ\x00", Format.XZ), (b"\x28\xb5\x2f\xfd", Format.ZSTD),
    (b"7z\xbc\xaf\x27\x1c", Format.SEVEN_ZIP), (b"Rar!\x1a\x07", Format.RAR),
    (b"%PDF", Format.PDF), (b"\xd0\xcf\x11\xe0", Format.XLS),
)  # fmt: skip
# "BZh", the block size 1-9, then a block's magic (pi) or the end of an empty stream (sqrt pi)
_BZIP2 = re.compile(rb"BZh[1-9](1AY&|\x17rE8)")
_COMPRESSED = frozenset({Format.GZIP, Format.BZIP2, Format.XZ, Format.ZSTD})
SNIFF_BYTES = 512  # a tar header's "ustar" mark is at 257
_SEND = "send CSV, .gz or .zip"


def sniff(head: bytes) -> Format | None:
    """The format the first bytes of a file name, or None for (what may be) text."""
    found = next((fmt for magic, fmt in _MAGIC if head.startswith(magic)), None)
    if found is None and _BZIP2.match(head):
        found = Format.BZIP2
    if found is None and head[257:262] == b"ustar":
        found = Format.TAR
    return found


def is_container(head: bytes) -> bool:
    """Whether the first bytes (up to SNIFF_BYTES; tar is only seen with 262) say a
    compressed file, an archive, PDF or an old Excel file rather than text."""
    return sniff(head) is not None


def _refusal(fmt: Format, where: str = "this", advice: str = _SEND) -> str:
    """Why a file (or what is inside one) is not read, and what to send instead: read as
    text it would be refused for a NUL byte in its header, which says neither."""
    if fmt is Format.PDF:
        return f"{where} is a PDF document, not a CSV file"
    if fmt is Format.XLS:
        return f"{where} is an old Excel (.xls) workbook; save it as CSV (UTF-8)"
    if where == "this":
        kind = "-compressed files" if fmt in _COMPRESSED else " archives"
        return f"{fmt.value}{kind} are not read: {advice}"
    if fmt in _COMPRESSED:
        return f"{where} is itself compressed ({fmt.value}): {advice}"
    return f"{where} is a {fmt.value} archive: {advice}"


def _refuse_nested(payload: _CappedReader, where: str, outer: Format) -> None:
    """Refuse a compressed file or archive inside `outer`: one level is unpacked, no more.
    A file compressed twice is a mistake in an export that the partner should fix (and a
    second level would be a second decompression bomb to cap); the message says how."""
    fmt = sniff(payload.peek(SNIFF_BYTES))
    if fmt is None:
        return
    if outer is Format.ZIP:
        advice = "put the CSV itself in the ZIP" + (", or send the .gz alone" if fmt is Format.GZIP else "")
    else:
        advice = "gzip the CSV itself" + {Format.GZIP: ", once", Format.ZIP: ", or send the .zip alone"}.get(
            fmt, ""
        )
    raise ParseError(_refusal(fmt, where, advice))


def open_payload(raw: BinaryIO, max_bytes: int = DEFAULT_MAX_BYTES) -> Readable:
    """Return a stream of the CSV bytes inside `raw`: itself, its gzip content, or the single
    CSV member of a ZIP archive. Formats that are clearly not CSV get a clear ParseError."""
    fmt = sniff(raw.read(SNIFF_BYTES))
    raw.seek(0)
    if fmt is None:
        size = raw.seek(0, io.SEEK_END)
        raw.seek(0)
        if size > max_bytes:
            raise ParseError(f"the file is {size:,} bytes, over the limit of {max_bytes:,} bytes")
        return raw
    if fmt is Format.ZIP:
        return _open_zip_member(raw, max_bytes)
    if fmt is not Format.GZIP:
        raise ParseError(_refusal(fmt))
    payload = _CappedReader(gzip.GzipFile(fileobj=raw, mode="rb"), max_bytes)
    _refuse_nested(payload, "the file inside the gzip file", Format.GZIP)
    return payload


# Files an operating system adds to a folder that is zipped: Finder's folder settings and
# resource forks (AppleDouble "._name", also under __MACOSX/), Windows' thumbnail cache and
# folder settings. Never the partner's data.
_SYSTEM_FILES = frozenset({".ds_store", "thumbs.db", "ehthumbs.db", "desktop.ini"})


def _is_system_file(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return name.startswith("__MACOSX/") or base.startswith("._") or base.lower() in _SYSTEM_FILES


def _the_one_file(infos: list[zipfile.ZipInfo]) -> zipfile.ZipInfo:
    """The one file of an archive, folders and operating-system files left out: a partner
    who zips a folder on a Mac or in Windows Explorer sends those along without knowing."""
    files = [i for i in infos if not i.is_dir()]
    members = [i for i in files if not _is_system_file(i.filename)]
    if len(members) == 1:
        return members[0]
    wanted = "it must hold one CSV file"
    if members:
        listed = ", ".join(m.filename for m in members[:5]) + (", ..." if len(members) > 5 else "")
        raise ParseError(
            "a ZIP archive must hold one CSV file and nothing else; "
            f"this one holds {len(members)} files ({listed})"
        )
    if files:
        listed = ", ".join(m.filename for m in files[:5]) + (", ..." if len(files) > 5 else "")
        raise ParseError(f"the ZIP archive holds no file but system files ({listed}); {wanted}")
    if infos:
        raise ParseError(f"the ZIP archive holds no file (only folders); {wanted}")
    raise ParseError(f"the ZIP archive is empty; {wanted}")


def _open_zip_member(raw: BinaryIO, max_bytes: int) -> Readable:
    try:
        archive = zipfile.ZipFile(raw)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ParseError(f"the ZIP archive is damaged: {exc}") from exc
    names = archive.namelist()
    if "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names):
        raise ParseError("this is an Excel (.xlsx) workbook; save it as CSV (UTF-8)")
    member = _the_one_file(archive.infolist())
    if member.flag_bits & 0x1:
        raise ParseError(f"{member.filename} in the ZIP archive is password-protected")
    if member.file_size > max_bytes:
        raise ParseError(f"the file is larger than the limit of {max_bytes:,} bytes once decompressed")
    try:
        inner = archive.open(member)
    except (NotImplementedError, zipfile.BadZipFile, RuntimeError) as exc:
        raise ParseError(f"cannot unpack {member.filename}: {exc}") from exc
    payload = _CappedReader(inner, max_bytes)
    _refuse_nested(payload, f"{member.filename} inside the ZIP archive", Format.ZIP)
    return payload
