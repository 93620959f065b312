"""How much of a partner's folder listing a pull reads before it gives up.

A listing is read whole before anything is chosen from it (names, sizes and times, then the
pattern), and neither FTP nor SFTP says how long a listing is. A server that never ends one
(a hostile or broken server streaming LIST lines or READDIR batches for ever) grew the pull's
memory until its deadline, two hours by default, and so could take the whole process down,
every other partner's pulls and the scheduler with it. A million LIST lines cost about 400 MB.

So a listing stops at `MAX_LISTED_ENTRIES`: far above any folder a partner keeps (a folder of
that many files is already unusable to their own tools), low enough to stay a few hundred MB.
The run fails saying which folder and what the partner can do; nothing is taken from a listing
cut short, since the files it did not read may be older than those it did.
"""

from __future__ import annotations

MAX_LISTED_ENTRIES = 500_000


def too_many_entries(where: str, folder: str) -> str:
    """The reason a pull gives for a listing cut at `MAX_LISTED_ENTRIES`."""
    return (
        f"{where}: folder {folder} lists more than {MAX_LISTED_ENTRIES:,} entries, so the pull "
        "stopped reading it (a listing without end would fill our memory). Ask the partner to "
        "move old files out of the folder (or let the connection archive or delete the files "
        "it takes), or point the connection at a folder of its own"
    )
