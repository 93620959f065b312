"""How large a message the e-mail pull may download: the one rule, and its wording.

A message is downloaded whole into memory and parsed there (imap-tools' MIME walk), so one
huge message (a partner's mistaken 3 GB mail, or an attacker's) could exhaust memory and stop
the engine for every partner, and be downloaded again on every poll. The server tells a
message's size (``RFC822.SIZE``) before anything is downloaded; a message larger than any
acceptable attachment could make it is never downloaded, and is recorded as too large.
"""

from __future__ import annotations

from typing import Final

# Base64 writes 4 characters for every 3 bytes (the last group padded), in lines of at most
# 76 characters, each ended by CRLF (RFC 2045 section 6.8): how mailers send attachments.
BASE64_LINE: Final = 76
# Room for everything else in the message: headers (a long Received chain, DKIM), the text
# and HTML body of a short covering mail, a signature logo.
MESSAGE_MARGIN: Final = 256 * 1024


def largest_message(max_file_bytes: int) -> int:
    """The largest message (RFC822.SIZE, in bytes) worth downloading when a file may be
    `max_file_bytes` (CONNECTBATCH_MAX_FILE_BYTES): one attachment of that size in base64
    with its line breaks, plus `MESSAGE_MARGIN`. About 1.37 times the file limit.

    Anything larger cannot bring a file we would take, unless it is one of these, which are
    refused too, on purpose: several attachments that each pass the limit but together do
    not (send them in separate mails), or a file sent quoted-printable and full of non-ASCII
    bytes (each such byte takes three; mailers send files as base64, and a compressed file
    is always base64). Exact integer arithmetic: a message one byte over is refused."""
    encoded = -(-max_file_bytes // 3) * 4  # ceil(n / 3) groups of 4 characters
    line_breaks = -(-encoded // BASE64_LINE) * 2
    return encoded + line_breaks + MESSAGE_MARGIN


def too_large(size: int | None, max_file_bytes: int | None) -> bool:
    """Whether a message of `size` bytes must not be downloaded. A size the server did not
    tell (it must, by IMAP4rev1) or no file limit at all: downloaded, as before."""
    return size is not None and max_file_bytes is not None and size > largest_message(max_file_bytes)


def too_large_reason(size: int, max_file_bytes: int) -> str:
    """The one wording of a message refused for its size (the connection's history, the
    answer to the sender, a fetch error): its size and both limits, never its content, nor
    the setting's name (the partner reads it, and cannot change it)."""
    return (
        f"the message is {size:,} bytes, larger than the limit of {largest_message(max_file_bytes):,} "
        f"bytes for a mail (one file of up to {max_file_bytes:,} bytes, base64-encoded, and the mail "
        "around it); it was not downloaded"
    )
