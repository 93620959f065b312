"""Pull for e-mail, registered as method ``"email"``: the attachments of messages in an IMAP
mailbox, as files.

A partner mails its files to a mailbox; each attachment whose (sanitised) file name matches
the connection's wildcard is one `RemoteFile`. The mailbox is the remote folder, a message's
UID plus the attachment's position is the remote path.

Settings (`connectbatch.transfer.specs.ImapSpec`, stored with the connection):

``security``   ``ssl`` (implicit TLS, port 993, the default), ``starttls`` (port 143, upgraded
               before login) or ``plain`` (no TLS: only to a loopback address, since the password
               would cross the network in clear).
``verify``     checks the server certificate (default); off accepts any certificate (a
               self-signed test or in-house server). ``ca_file`` trusts one PEM bundle.
folder         the connection's folder, the mailbox folder to read (default ``INBOX``).
``processed_flag`` / ``move_to``  what marks a message as done: a keyword (default
               ``$ConnectBatchProcessed``; ``\\Seen`` also works), or a folder to move it to
               (created if missing). Without ``move_to`` the connection's after-success
               action decides: archive moves to the archive folder, otherwise the flag.
``recipient``  only messages addressed to this address (To, Cc, Delivered-To or X-Original-To):
               how one mailbox serves many push connections by plus-addressing
               (``inbox+<connection>@domain``). A copy delivered to one plus-address of the
               mailbox (Delivered-To/X-Original-To) is only that address's, whatever To/Cc say;
               one copy kept for several of them is each one's (`shared`, our own mailbox).

How a message is processed once, and only when everything in it has been taken:

* `list_files` searches on the server for messages not yet marked (``UNDELETED UNKEYWORD
  $ConnectBatchProcessed`` plus the recipient), so a mailbox with years of processed mail
  costs one SEARCH. It then fetches, in batches, only RFC822.SIZE, BODYSTRUCTURE and the
  address headers (`screen`) and downloads whole messages only when the structure shows a
  part that can be an attachment (plain-text and HTML-only mail is never downloaded) and the
  size is one an acceptable attachment could make (`size`: a message is downloaded whole,
  into memory, so a huge one must never be). Attachments are found
  with imap-tools' own MIME walk on the downloaded message rather than by trusting the
  server's BODYSTRUCTURE names: servers and Python's e-mail package disagree on malformed
  MIME (an unquoted ``filename=This is a test.txt`` is ``This`` to Dovecot), and a file
  silently missed is worse than a message downloaded twice.
* Every listed attachment must be confirmed. The transport remembers, per message, which of
  its matching attachments are still open; `after_success` closes one and, when the last one
  is closed, marks the message (flag or move). A message whose attachments did not all
  succeed stays unmarked and is listed again by the next run, where the ledger
  (Message-ID + sha256) recognises what was already loaded. A caller that decides to skip a
  listed file (e.g. a duplicate) should still call `after_success` for it, or call
  `finish_message` to mark a message outright. A run confirms a file it refused for good
  (rejected as a whole, over the file limit) too, with "leave", so such a mail is not
  downloaded on every poll (`Transport.settles_refused`); a message one of whose files was
  taken is still archived when the action says so. Use one transport instance per run: the
  open set lives in memory (a fresh instance starts from the set recorded in
  ``extra["attachments"]``).
* A forwarded mail (a message/rfc822 part, base64-encoded or not) is no file: its own
  attachments are listed, each saying which forwarded mail it came out of (`message`).
* Outlook's rich-text wrapper (winmail.dat, TNEF) is no file either: the files inside it are
  listed, each saying it came out of it (`tnef`); one that cannot be read stays one
  attachment, never taken, and the sender is told to send HTML or plain text.
* A message that brings nothing (no attachment, or none matching; a ``.gz`` attachment
  matches by its name without ``.gz``, a one-member ``.zip`` by its member's name too), or is
  too large to download, is no file: it is kept in the transport's ``unmatched`` list
  (`standins`), the run records it once in the connection's history and may answer the
  sender (``pipeline.history``), then marks it processed. Plain-text mail is still never
  downloaded (its headers say enough), and nothing marks a message as read: bodies are
  fetched with ``BODY.PEEK``.

The connection's ``action``/``archive_folder`` (from the generic after-success setting) only
matter when ``processed`` is not set: ``archive`` with a folder means ``move:<folder>``;
anything else means ``flag``. Mail is never deleted.

Modules: `session` (settings, connection, UID commands, errors in words), `transport` (listing,
fetching, marking), `screen` (what the server says of a message before it is downloaded:
recipient, sender, size, structure), `size` (the largest message worth downloading),
`standins` (the records of messages that bring no file), `shared` (one stored copy several
plus-addresses take their parts of), `response` (raw FETCH responses,
BODYSTRUCTURE screening), `message` (safe file names, dates). Importing this package
registers the transport.
"""

from connectbatch.transfer.pull.imap.message import safe_filename
from connectbatch.transfer.pull.imap.session import DEFAULT_FLAG, _scrub
from connectbatch.transfer.pull.imap.transport import ImapTransport

__all__ = ["DEFAULT_FLAG", "ImapTransport", "_scrub", "safe_filename"]
