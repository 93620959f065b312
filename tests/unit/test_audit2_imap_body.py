"""What imap-tools makes of a FETCH answer, as `message.carries_body` reads it: a mail only
when the answer held the message's bytes.

A UID expunged by another session gets no body in the answer, only an unsolicited FETCH of
its flags; imap-tools made an empty mail of that (no headers, no attachment), which the pull
listed as a mail without attachment or, at download, failed the whole run on ("message UID 1
has no attachment number 1"). `carries_body` relies on imap-tools' `_raw_uid_data` (the line
of the answer's one literal): this test fails if a new imap-tools changes that.
"""

from __future__ import annotations

from imap_tools import MailMessage

from connectbatch.transfer.pull.imap.message import carries_body

BODY = b"From: a@partner.example\r\nSubject: calls\r\n\r\nhello\r\n"


def test_an_answer_with_the_message_bytes_is_a_mail() -> None:
    message = MailMessage([(b"1 (UID 7 FLAGS () RFC822.SIZE 52 BODY[] {52}", BODY), b")"])
    assert carries_body(message) and message.uid == "7"


def test_an_answer_with_the_flags_of_an_expunged_mail_only_is_none() -> None:
    message = MailMessage([b"1 (UID 7 FLAGS (\\Deleted))"])
    assert not carries_body(message) and message.uid == "7"
