-- Which plus-address of a shared mailbox has taken its part of one stored copy of a mail.
-- A mail server that keeps one copy of a mail addressed to several of our e-mail push
-- connections (no Delivered-To per copy) gave it to the connection read first: it marked the
-- copy processed and the others never saw it. The copy is now marked only when every
-- addressed connection has taken it; until then these rows keep each one from taking it twice.
-- `mailbox` is the account and folder (user@host:port/folder), `uidvalidity` and `uid` the copy.
CREATE TABLE mail_taken (
    mailbox VARCHAR NOT NULL,
    uidvalidity VARCHAR NOT NULL,
    uid BIGINT NOT NULL,
    recipient VARCHAR NOT NULL,
    taken_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (mailbox, uidvalidity, uid, recipient)
);
