"""From a file's bytes to UTF-8 chunks the parser cores can scan.

Owns everything that happens before tokenizing, once the payload is plain (parser/containers.py
unpacks .gz and .zip and refuses what is no CSV): byte-order marks, the encoding, and
transcoding UTF-16/windows-1252 (asked as latin-1 or cp1252) to UTF-8. Bytes that are invalid in
the source encoding are kept as invalid UTF-8 (lone surrogates) so the core rejects exactly
the rows that contain them instead of failing the whole file.
"""

from __future__ import annotations

import codecs
import io
import mmap
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from connectbatch.errors import ConfigurationError, ParseError
from connectbatch.parser.ahead import produced_ahead

CHUNK_SIZE = 8 * 1024 * 1024
# The first read after the head: small, doubling while reads fill it (`_reused_reads`).
FIRST_READ = 64 * 1024
DEFAULT_MAX_BYTES = 4 * 1024**3  # after decompression
# A plain file with at least this much after the head is mapped rather than read (`_mapped`).
MAP_MIN_REST = CHUNK_SIZE
# Chunks of a mapped file kept resident behind the one being handed out (`_mapped_chunks`).
MAP_LAG = 2

_MARK_ERRORS = "connectbatch-mark-invalid"


class Readable(Protocol):
    """What the parser needs of a payload: chunks of bytes on demand."""

    def read(self, size: int = ..., /) -> bytes: ...


def _mark_invalid(err: UnicodeError) -> tuple[str, int]:
    """Replace undecodable bytes by lone surrogates: they survive transcoding as bytes
    that are never valid UTF-8, so the core rejects that row with its line number."""
    if not isinstance(err, UnicodeDecodeError):
        raise err
    bad = err.object[err.start : err.end]
    return "".join(chr(0xDC00 + b) for b in bad), err.end


codecs.register_error(_MARK_ERRORS, _mark_invalid)

# A file said to be latin-1 or cp1252 is read as browsers read both (the WHATWG Encoding
# standard): windows-1252, whose 0x80-0x9F are the curly quotes, the euro sign and the dashes
# that Windows programs write, and the five bytes cp1252 leaves undefined are the C1 controls
# of latin-1. Read as ISO 8859-1, a Windows export's "Joe’s" was stored as 'Joe\x92s'
# with nothing rejected; read as Python's strict cp1252, a stray 0x81 rejected its row.
WINDOWS_1252 = "windows-1252"
_READ_AS_WINDOWS_1252 = frozenset({"iso8859-1", "cp1252"})
_WINDOWS_1252_TABLE = "".join(bytes([b]).decode("cp1252", "ignore") or chr(b) for b in range(256))


class _Windows1252Decoder(codecs.IncrementalDecoder):
    """windows-1252 as WHATWG defines it (one byte, one character: nothing to carry over)."""

    def decode(self, input: Any, final: bool = False) -> str:  # any buffer, as codecs' own
        return codecs.charmap_decode(input, self.errors, _WINDOWS_1252_TABLE)[0]


_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


@dataclass(frozen=True)
class Encoding:
    """The encoding a file is read in and how it was decided (for messages)."""

    name: str  # a Python codec name, normalised
    had_bom: bool

    @property
    def is_utf8(self) -> bool:
        return self.name == "utf-8"


def normalise_encoding(name: str) -> str:
    try:
        return codecs.lookup(name).name.replace("_", "-")
    except LookupError:
        raise ConfigurationError(
            f"unknown encoding {name!r}; use e.g. utf-8, utf-16, latin-1 or cp1252"
        ) from None


def detect_encoding(head: bytes, requested: str | None) -> tuple[Encoding, int]:
    """Pick the encoding from a byte-order mark, else the requested one, else UTF-8.

    A BOM wins over the request: it is written by the program that produced the file,
    while the request is a connection setting that may be stale. For the same reason a head
    of non-ASCII text that is valid UTF-8 is read as UTF-8 when a legacy encoding (latin-1,
    cp1252, ...) was requested: a partner moving its export to UTF-8 would otherwise have
    every accented name loaded garbled ('Télé' as 'TÃ©lÃ©') with nothing rejected, while
    real cp1252 text is almost never valid UTF-8. Returns the encoding and the number of
    BOM bytes to skip.
    """
    for bom, name in _BOMS:
        if head.startswith(bom):
            return Encoding(name, True), len(bom)
    name = normalise_encoding(requested) if requested else "utf-8"
    if name in _READ_AS_WINDOWS_1252:
        name = WINDOWS_1252
    if name in ("utf-16", "utf-32"):
        raise ParseError(
            f"the file has no byte-order mark, so {requested} is ambiguous; use {name}-le or {name}-be"
        )
    if name == "utf-8" and not requested:
        _refuse_bomless_utf16(head)
    if not name.startswith("utf-") and _utf8_text(head):
        return Encoding("utf-8", False), 0
    return Encoding(name, False), 0


def _utf8_text(head: bytes) -> bool:
    """Whether `head` holds non-ASCII characters and is valid UTF-8 (a character cut at its
    end, where the head was cut, is allowed)."""
    if head.isascii():
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


# Share of NUL bytes, at each position modulo 4, that says which wide encoding a file without
# a byte-order mark is in: ASCII text in UTF-16-LE is "a\0b\0", in UTF-32-BE "\0\0\0a".
_WIDE_PATTERNS: tuple[tuple[tuple[bool, bool, bool, bool], str], ...] = (
    ((False, True, False, True), "utf-16-le"),
    ((True, False, True, False), "utf-16-be"),
    ((False, True, True, True), "utf-32-le"),
    ((True, True, True, False), "utf-32-be"),
)
_MOSTLY_NUL = 0.5  # text with accents or other scripts has fewer NULs than plain ASCII
_HARDLY_NUL = 0.1


def _refuse_bomless_utf16(head: bytes) -> None:
    """Refuse UTF-16/32 text without a byte-order mark, naming the encoding to set.

    Only NULs at regular positions say so: a NUL at every other byte is UTF-16, three in
    four UTF-32. NULs elsewhere (a binary file, a stray NUL in a cell) are left to the core,
    which names the line; NUL padding at the end of the file is not text at all and is
    dropped (`_without_nul_padding`), so it is left out of the sample too."""
    sample = head[:4096].rstrip(b"\0")
    if len(sample) < 8:
        return
    shares = [sample[r::4].count(0) / len(sample[r::4]) for r in range(4)]
    for pattern, name in _WIDE_PATTERNS:
        if all(s >= _MOSTLY_NUL if nul else s <= _HARDLY_NUL for s, nul in zip(shares, pattern, strict=True)):
            width = name[:6].upper()
            how = "every other byte is" if width == "UTF-16" else "three bytes in four are"
            raise ParseError(
                f"the file looks like {width} text without a byte-order mark "
                f"({how} NUL); set the connection's encoding to {name}"
            )


def _without_nul_padding(chunks: Iterator[bytes | memoryview]) -> Iterator[bytes | memoryview]:
    """`chunks` without the NUL bytes that end the file after its last line end.

    Some export tools pad a file with NULs to a block size; read as text they would be a last
    record of NULs, rejected (or, in a short file, the whole file refused) for bytes the
    partner never wrote. NULs are held back until text follows them, so a run split across
    reads is seen whole; NULs after a record with no line end stay, as part of that record.
    No chunk is copied unless it ends with a NUL, and no view is kept across a yield (the
    reused read buffers are taken again only when nothing points into them)."""
    held = 0  # NULs at the end of what was read so far, not passed on yet
    last = -1  # the byte before them
    for chunk in chunks:
        size = len(chunk)
        body = len(bytes(chunk).rstrip(b"\0")) if size and chunk[size - 1] == 0 else size
        if body:
            if held:
                yield bytes(held)
            held, last = size - body, chunk[body - 1]
            part = chunk[:body] if held else chunk
            del chunk
            yield part
            del part
        else:
            held += size
            del chunk
    if held and last not in (0x0A, 0x0D):
        yield bytes(held)


def utf8_source(
    payload: Readable | bytes, requested: str | None, *, reuse: bool = False, mapped: bool = False
) -> tuple[Encoding, Iterator[bytes | memoryview]]:
    """The payload's text as UTF-8 chunks (BOM removed), and the encoding it was read in.

    Chunk borders are arbitrary: the core carries incomplete records over. UTF-8 bytes are
    passed through without a copy; other encodings are transcoded chunk by chunk.
    `mapped` allows a big plain file to be scanned from a read-only mapping (`_mapped`):
    only for a file that is ours and that nothing changes while it is parsed, see there.
    """
    if isinstance(payload, bytes):
        head = payload[:CHUNK_SIZE]
    else:
        # A file that will be mapped needs only enough of a head to detect the encoding: the
        # rest is scanned from the mapping, and a CHUNK_SIZE read is that much fresh memory to
        # fault in and copy into (~5 ms of serial time for the 393 MB bench file).
        small = mapped and _mappable(payload, min(FIRST_READ, CHUNK_SIZE))
        head = payload.read(min(FIRST_READ, CHUNK_SIZE) if small else CHUNK_SIZE)
    encoding, skip = detect_encoding(head, requested)
    if (
        not encoding.name.startswith("utf-")
        and head.isascii()
        and _utf8_text(_first_non_ascii(payload, len(head)))
    ):
        encoding = Encoding("utf-8", False)
    return encoding, _without_nul_padding(_chunks(payload, head, skip, encoding, reuse, mapped))


# What `_first_non_ascii` reads at a time, and how much of the text from there it returns.
_SCAN_BYTES = CHUNK_SIZE
_SAMPLE_BYTES = 4096
_HIGH_BYTE = re.compile(rb"[\x80-\xff]")


def _first_non_ascii(payload: Readable | bytes, head: int) -> bytes:
    """The payload's bytes from its first non-ASCII byte after the `head` bytes (at most
    _SAMPLE_BYTES); a file's read aside (pread) so the stream stays where it is. Empty when
    there is none, or the payload is a stream that cannot be read aside (a pipe, an archive
    member).

    Why: `detect_encoding` reads a file as UTF-8 despite a legacy encoding setting when its
    non-ASCII text is valid UTF-8, but sees only the head. A file whose head is plain ASCII
    (US rows first, the first 'Zürich' 2,000 lines down) was then decoded as cp1252 and
    stored 'ZÃ¼rich', with nothing rejected, where the same rows in a smaller file were
    read right. Costs one read of the file, only on a connection set to a legacy encoding
    whose file starts in plain ASCII."""
    if isinstance(payload, bytes):
        found = _HIGH_BYTE.search(payload, head)
        return payload[found.start() : found.start() + _SAMPLE_BYTES] if found else b""
    fileno = getattr(payload, "fileno", None)
    tell = getattr(payload, "tell", None)
    if fileno is None or tell is None:
        return b""
    try:
        fd = fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        at = tell()
        while block := os.pread(fd, _SCAN_BYTES, at):
            if not block.isascii():
                first = _HIGH_BYTE.search(block)
                assert first is not None  # the block is not ASCII
                return (block[first.start() :] + os.pread(fd, _SAMPLE_BYTES, at + len(block)))[:_SAMPLE_BYTES]
            at += len(block)
    except (OSError, ValueError, io.UnsupportedOperation):
        return b""
    return b""


def _chunks(
    payload: Readable | bytes,
    head: bytes,
    skip: int,
    encoding: Encoding,
    reuse: bool = False,
    mapped: bool = False,
) -> Iterator[bytes | memoryview]:
    if isinstance(payload, bytes):
        if encoding.is_utf8:
            yield memoryview(payload)[skip:]
            return
        rest = io.BytesIO(payload)
        rest.seek(len(head))
        stream: Readable = rest
    else:
        stream = payload
    if encoding.is_utf8:
        yield memoryview(head)[skip:]
        mm = _mapped(stream, len(head)) if mapped else None
        if mm is not None:
            yield from _mapped_chunks(mm, len(head))
            return
        readinto = getattr(stream, "readinto", None) if reuse else None
        if readinto is not None:
            yield from _reused_reads(readinto)
            return
        while chunk := stream.read(CHUNK_SIZE):
            yield chunk
        return
    if encoding.name == WINDOWS_1252:
        decoder: codecs.IncrementalDecoder = _Windows1252Decoder(errors=_MARK_ERRORS)
    else:
        decoder = codecs.getincrementaldecoder(encoding.name)(errors=_MARK_ERRORS)
    chunk = head[skip:]
    while True:
        final = not chunk
        text = decoder.decode(chunk, final=final)
        if text:
            yield text.encode("utf-8", "surrogatepass")
        if final:
            return
        chunk = stream.read(CHUNK_SIZE)


READ_AHEAD_MIN = 16 * 1024 * 1024  # input a one-thread parse reads ahead for (`read_ahead`)


def read_ahead(chunks: Iterator[bytes | memoryview], depth: int = 2) -> Iterator[bytes | memoryview]:
    """`chunks`, read up to `depth` ahead on a thread of their own: the reads' copies from the
    page cache (the kernel's work, the GIL released) run beside the parse instead of between
    its chunks. A one-thread parse of the 393 MB bench file took 0.67-0.69 s instead of
    0.70-0.72 s (issue 13)."""
    return produced_ahead(lambda _stop: chunks, depth, "cb-read-ahead")


def _reused_reads(readinto: Callable[[memoryview], int | None]) -> Iterator[memoryview]:
    """Chunks read into buffers that are read into again once nothing points into them.

    A fresh 8 MB bytes object per chunk is fresh memory the kernel must fault in and zero
    before the read copies into it: the biggest share of a parse's page faults. A buffer is
    taken again only when no view of it is left (a resize is refused while one is), so a
    consumer may keep chunks as long as it likes (the threaded parse keeps blocks in
    flight); it then simply gets new buffers. Buffers start small and double while reads
    fill them, up to CHUNK_SIZE: a small file (read whole with the head) must not pay for
    zeroing 8 MB to learn that nothing is left (~3 ms a file, issue 13)."""
    pool: list[bytearray] = []
    size = FIRST_READ
    while True:
        buf = next((b for b in pool if len(b) == size and _unexported(b)), None)
        if buf is None:
            buf = bytearray(size)
            _unexported(buf)  # its one growth now, not on the first reuse
            pool = [b for b in pool if len(b) == size] + [buf]
        view = memoryview(buf)
        n = readinto(view) or 0
        chunk = view[:n]
        del view
        if not n:
            return
        if n == len(buf) and size < CHUNK_SIZE:
            size = min(size * 2, CHUNK_SIZE)
        del buf
        yield chunk
        del chunk


def plain_size(payload: Readable | bytes) -> int:
    """The bytes a plain payload holds from where it stands (held in memory, or a regular
    file), else 0 (unknown: a stream, an archive member). The compiled parser sizes its
    buffers from it; transcoding changes the count, so it is a hint only."""
    if isinstance(payload, bytes):
        return len(payload)
    fileno = getattr(payload, "fileno", None)
    tell = getattr(payload, "tell", None)
    if fileno is None or tell is None:
        return 0
    try:
        info = os.fstat(fileno())
        return max(0, info.st_size - tell()) if stat.S_ISREG(info.st_mode) else 0
    except (OSError, ValueError, io.UnsupportedOperation):
        return 0


def _mappable(stream: Readable, head: int) -> bool:
    """Whether `_mapped` will map the file behind `stream` once `head` bytes are read: a
    regular file, read from its start, with at least MAP_MIN_REST bytes after the head."""
    fileno = getattr(stream, "fileno", None)
    tell = getattr(stream, "tell", None)
    if fileno is None or tell is None:
        return False
    try:
        info = os.fstat(fileno())
        return stat.S_ISREG(info.st_mode) and info.st_size - tell() - head >= MAP_MIN_REST
    except (OSError, ValueError, io.UnsupportedOperation):
        return False


def _mapped(stream: Readable, offset: int) -> mmap.mmap | None:
    """The whole file behind `stream` mapped read-only, when the rest after `offset` (the
    head, already read) is big enough to matter; None to read it instead.

    Only called when the caller opted in (`utf8_source(mapped=True)`), because a mapping is
    only safe on a file nobody else changes: if another process shortens a mapped file,
    touching the pages past its new end kills this whole process with SIGBUS instead of
    raising an error (a server must never crash on a partner's or a user's file). The
    ingest's staged copy is ours and written once, so it may be mapped; a path a user gave
    (the CLI's `parse`, a dry run) is read.

    Why map at all: reading copies every byte from the page cache into our buffer (~7 % of the parse of
    a 393 MB file, on the one thread that also cuts the blocks of a threaded parse); a
    mapping lets the parser scan the page cache itself. Only a regular file that nothing
    else writes (a staged file is ours) is mapped; the length is fixed at the size seen
    now, as the recorded size and hash were. Anything unusual (a pipe, a socket, an
    unpacked archive member, a file system that cannot map) reads as before."""
    fileno = getattr(stream, "fileno", None)
    tell = getattr(stream, "tell", None)
    if fileno is None or tell is None:
        return None
    try:
        fd = fileno()
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size - offset < MAP_MIN_REST or tell() != offset:
            return None
        return mmap.mmap(fd, info.st_size, access=mmap.ACCESS_READ)
    except (OSError, ValueError, io.UnsupportedOperation):
        return None


def _mapped_chunks(mm: mmap.mmap, offset: int) -> Iterator[memoryview]:
    """CHUNK_SIZE views of the mapping from `offset`, as the reads would have given them.

    The pages of chunks the parse has moved past are unmapped again (MADV_DONTNEED only
    drops our view of the page cache; a later touch maps them back with the same bytes),
    so the resident size stays that of a few chunks, like the reused read buffers, instead
    of growing to the file's size. Released LAG chunks behind, past the blocks a threaded
    parse keeps in flight."""
    view = memoryview(mm)
    size = len(mm)
    release = getattr(mm, "madvise", None)
    dontneed = getattr(mmap, "MADV_DONTNEED", None)
    starts = range(offset, size, CHUNK_SIZE)
    for k, start in enumerate(starts):
        yield view[start : start + CHUNK_SIZE]
        if release is not None and dontneed is not None and k >= MAP_LAG:
            first = starts[k - MAP_LAG]
            aligned = -(-first // mmap.PAGESIZE) * mmap.PAGESIZE
            end = first + CHUNK_SIZE
            if end > aligned:
                release(dontneed, aligned, end - aligned)


def _unexported(buf: bytearray) -> bool:
    """Whether no memoryview of `buf` is alive: only then may it be resized."""
    try:
        buf.append(0)
    except BufferError:
        return False
    buf.pop()
    return True
