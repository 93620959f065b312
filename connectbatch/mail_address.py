"""The address partners e-mail an e-mail push connection's files to: inbox+<tag>@domain.

The tag is the connection's name and a random ending (inbox+acme-calls-k3f9qz2m@...), drawn
once when the connection is created and kept through renames. The address is all a sender
needs: anyone who knew it could mail files in, and they became pending (payable) actions.
A tag of the name alone could be guessed from the partner's name (an attacker's audit), and
a From that the allowed senders check is written by the sender, so the ending is what keeps
the address to those it was given to. Connections from before keep the address they had.

One place for it, because three parts of the product name it: the credentials shown to the
analyst (services.credentials), the mailbox poll that routes a mail by it (engine), and every
mail we send the partner about that connection (pipeline.outbox), whose Reply-To names it so
that a partner who answers our mail with the corrected file reaches the connection. Before,
our mails carried only our From address, and a reply went there and was lost (an e-mail audit).
"""

from __future__ import annotations

import hashlib
import secrets
import string
import unicodedata

from connectbatch.models import Connection, Method, Methodology

MAX_LOCAL_PART = 64  # characters before the "@" of an address (RFC 5321)
DRYRUN_SUFFIX = "+dryrun"
# The random ending of a new connection's tag: 36^8 (~2.8e12) addresses per name, lower case
# since many mail systems fold the case of an address.
ENDING_CHARS = 8
_ENDING_ALPHABET = string.ascii_lowercase + string.digits


def mail_tag(name: str, room: int = MAX_LOCAL_PART) -> str:
    """The part of an e-mail push connection's address its name makes (inbox+<tag>@...):
    letters and digits in lower case, any other character "-", no "-" at either end. Two connections
    whose tags are equal would share one address (services.connections refuses that). A tag
    longer than `room` is cut and ends with six characters of the name's hash, so that two long
    names sharing their start still make two addresses (an address over 64 characters before
    the "@" is refused by many mail servers)."""
    tag = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")
    if len(tag) <= room:
        return tag
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:6]
    return f"{tag[: room - len(digest) - 1].rstrip('-')}-{digest}"


def is_mailed_to(connection: Connection) -> bool:
    """True for an e-mail push connection: partners send its files to an address of ours."""
    return connection.method is Method.EMAIL and connection.methodology is Methodology.PUSH


def _room(inbound_mailbox: str) -> int:
    """Characters a tag may take: a local part holds at most 64, and the dry-run address
    adds "+dryrun" after the tag."""
    local = inbound_mailbox.partition("@")[0]
    return max(8, MAX_LOCAL_PART - len(local) - len("+") - len(DRYRUN_SUFFIX))


def new_tag(inbound_mailbox: str, name: str) -> str:
    """The tag a new e-mail push connection keeps: its name's tag in ASCII and a random
    ending. In ASCII ("Réseau été" -> reseau-ete-...): an address in UTF-8 needs SMTPUTF8 of
    every server on the way, which many partners' mail systems do not offer (an operator
    audit); a name with no Latin letter leaves the ending alone."""
    ending = "".join(secrets.choice(_ENDING_ALPHABET) for _ in range(ENDING_CHARS))
    named = _name_part(inbound_mailbox, name)
    return f"{named}-{ending}" if named else ending


def _name_part(inbound_mailbox: str, name: str) -> str:
    latin = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return mail_tag(latin, max(8, _room(inbound_mailbox) - ENDING_CHARS - 1))


def draft_address(inbound_mailbox: str, name: str) -> str:
    """What a draft's address will look like, its ending not drawn yet: inbox+acme-calls-…@..."""
    local, _, domain = inbound_mailbox.partition("@")
    named = _name_part(inbound_mailbox, name)
    return f"{local}+{named}-…@{domain}" if named else f"{local}+…@{domain}"


def address_tag(inbound_mailbox: str, connection: Connection) -> str:
    """The connection's kept tag, else the one its name makes now (a connection from
    before tags were kept, or a draft not created yet), short enough for the address."""
    return connection.mail_tag or mail_tag(connection.name, _room(inbound_mailbox))


def inbound_address(inbound_mailbox: str, connection: Connection) -> str:
    """The address partners send an e-mail push connection's files to, inbox+<tag>@..."""
    local, _, domain = inbound_mailbox.partition("@")
    return f"{local}+{address_tag(inbound_mailbox, connection) or connection.id}@{domain}"


def dryrun_address(inbound_mailbox: str, connection: Connection) -> str:
    """The `+dryrun` address of an e-mail push connection: its inbound address with
    `+dryrun` in the local part (inbox+vendor-a+dryrun@...); mail to it is a dry run."""
    local, _, domain = inbound_address(inbound_mailbox, connection).partition("@")
    return f"{local}{DRYRUN_SUFFIX}@{domain}"
