"""Bounds on what an IMAP server can make us read: one literal no larger than the largest mail
worth downloading, and one command's answer no larger than that plus a margin.

The size screen (`size`, `screen`) believes the RFC822.SIZE the server tells before a message
is downloaded. imaplib then reads whatever length the server announces for the message's
literal (`{3000000000}`) into memory in one piece, so a server that says 900 bytes and then
sends gigabytes (a hostile one, or a broken one whose sizes are wrong) went around the screen
and could exhaust the memory every partner's pulls and the scheduler share. imaplib also
keeps every untagged line a server sends before it ends a command (`* 1 EXISTS`, again and
again), without limit.

Here the client refuses, before reading a byte of it, a literal larger than
`size.largest_message` (no mail we would take needs more), and ends a command whose answer
passes `largest_message + ANSWER_MARGIN` bytes. The connection is then out of step and is
dropped: an oversized literal has the transport record that message as too large, as if the
server had told its size honestly, and go on with the others; an endless answer fails the
run, saying so.
"""

from __future__ import annotations

import imaplib
from collections.abc import Callable
from typing import TYPE_CHECKING

from connectbatch.transfer.pull.imap import size as message_size

if TYPE_CHECKING:  # collections.abc.Buffer from Python 3.12 on; typeshed has it for all
    from typing_extensions import Buffer

# Beyond one message: a screening FETCH of a batch of UIDs (their headers and structure) or a
# SEARCH of a large mailbox is a few MB at most.
ANSWER_MARGIN = 64 * 1024 * 1024


class OversizedLiteral(imaplib.IMAP4.abort):
    """The server announced a literal of `size` bytes, over the largest mail we download."""

    def __init__(self, size: int, largest: int) -> None:
        super().__init__(
            f"the server announced {size:,} bytes, more than the {largest:,} bytes of the largest mail"
        )
        self.size = size


def bound(client: imaplib.IMAP4, max_file_bytes: int | None) -> None:
    """Make `client` refuse literals over `size.largest_message(max_file_bytes)` and answers
    over that plus ANSWER_MARGIN (no bound without a file limit, as before)."""
    if max_file_bytes is None:
        return
    largest = message_size.largest_message(max_file_bytes)
    budget = largest + ANSWER_MARGIN
    send: Callable[[Buffer], None] = client.send
    read: Callable[[int], bytes] = client.read
    readline: Callable[[], bytes] = client.readline
    answered = [0]  # bytes read since the last command was sent

    def charge(size: int) -> None:
        answered[0] += size
        if answered[0] > budget:
            raise imaplib.IMAP4.abort(
                f"the server sent more than {budget:,} bytes in answer to one command; "
                "no mailbox we pull needs that many"
            )

    def sending(data: Buffer) -> None:
        answered[0] = 0
        send(data)

    def bounded_read(size: int) -> bytes:
        if size > largest:
            raise OversizedLiteral(size, largest)
        charge(size)
        return read(size)

    def bounded_readline() -> bytes:
        line = readline()
        charge(len(line))
        return line

    client.send = sending  # type: ignore[method-assign]
    client.read = bounded_read  # type: ignore[method-assign]
    client.readline = bounded_readline  # type: ignore[method-assign]


def oversized(exc: BaseException) -> OversizedLiteral | None:
    """The OversizedLiteral behind `exc`: imaplib re-raises an abort during a command as a new
    abort (`command: UID => ...`), keeping ours only as its context."""
    seen: BaseException | None = exc
    for _ in range(8):  # a short chain: imaplib, then imap-tools, wrap it at most
        if seen is None or isinstance(seen, OversizedLiteral):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
