"""File names on the FTP wire, whatever their bytes.

ftplib decodes every reply and every listing line as strict UTF-8 (Python's default since
3.9). A partner folder holding one name in another encoding (`caf\\xe9.csv`, an upload from
an old Windows machine) made LIST fail with a UnicodeDecodeError, so the folder could not be
pulled at all, on every run, whatever the pattern. vsftpd also echoes the name in its `150`
reply to RETR, so a tolerant listing alone would not do.

So the FTP control and data connections use the text encoding registered here: UTF-8 with
the bytes that are not UTF-8 kept as surrogates (`surrogateescape`), both ways. A name read
from a listing goes back to the server byte for byte; `readable` gives the text the ledger,
the pattern and people see (`naming.readable_name`), and `printable` makes any text holding
such a name safe to store and show.
"""

from __future__ import annotations

import codecs
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # collections.abc.Buffer from Python 3.12 on; typeshed has it for all
    from typing_extensions import Buffer

from connectbatch.transfer.naming import readable_name

ENCODING = "connectbatch_ftp_names"
_ERRORS = "surrogateescape"


def _encode(text: str, errors: str = "strict") -> tuple[bytes, int]:
    return text.encode("utf-8", _ERRORS), len(text)


def _decode(data: Buffer, errors: str = "strict", /) -> tuple[str, int]:
    raw = bytes(data)
    return raw.decode("utf-8", _ERRORS), len(raw)


class _Decoder(codecs.IncrementalDecoder):
    """UTF-8 whatever `errors` the caller (io.TextIOWrapper: strict) asks for."""

    def __init__(self, errors: str = "strict") -> None:
        super().__init__(_ERRORS)
        self._utf8 = codecs.getincrementaldecoder("utf-8")(_ERRORS)

    def decode(self, input: Buffer, final: bool = False) -> str:
        return self._utf8.decode(input, final)

    def reset(self) -> None:
        self._utf8.reset()

    def getstate(self) -> tuple[bytes, int]:
        return self._utf8.getstate()

    def setstate(self, state: tuple[bytes, int]) -> None:
        self._utf8.setstate(state)


class _Encoder(codecs.IncrementalEncoder):
    def __init__(self, errors: str = "strict") -> None:
        super().__init__(_ERRORS)

    def encode(self, input: str, final: bool = False) -> bytes:
        return input.encode("utf-8", _ERRORS)


def _search(name: str) -> codecs.CodecInfo | None:
    if name.replace("-", "_") != ENCODING:
        return None
    return codecs.CodecInfo(
        _encode, _decode, incrementalencoder=_Encoder, incrementaldecoder=_Decoder, name=ENCODING
    )


codecs.register(_search)


def readable(wire: str) -> str:
    """The text form of a name as ftplib read it (`naming.readable_name` of its bytes)."""
    return readable_name(wire.encode("utf-8", _ERRORS))


def printable(text: str) -> str:
    """`text` (a reply, a message naming a file) without the surrogates a name not in UTF-8
    leaves in it, so that it can be stored and shown."""
    return text.encode("utf-8", _ERRORS).decode("utf-8", "replace")
