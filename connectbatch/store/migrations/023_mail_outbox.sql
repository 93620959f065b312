-- Outgoing mail kept until the SMTP server took it (pipeline/outbox.py): a run's results
-- e-mail used to be sent inside the run, so an SMTP server that was down lost it and one that
-- did not answer held every ingest for the SMTP timeout. The message itself is a spooled
-- .eml file (`path`, relative to the outbox folder); its row says where it stands.
CREATE SEQUENCE seq_mail_outbox;
CREATE TABLE mail_outbox (
    id               BIGINT PRIMARY KEY DEFAULT nextval('seq_mail_outbox'),
    kind             VARCHAR NOT NULL,      -- results | ...
    connection_id    BIGINT,
    run_id           BIGINT,
    recipient        VARCHAR NOT NULL,
    subject          VARCHAR NOT NULL,
    path             VARCHAR NOT NULL,
    envelope_from    VARCHAR,               -- NULL: the configured sender; '<>' for automatic answers
    state            VARCHAR NOT NULL,      -- pending | sending | sent | failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    claimed_at       TIMESTAMPTZ,
    last_error       VARCHAR,
    created_at       TIMESTAMPTZ NOT NULL,
    sent_at          TIMESTAMPTZ
);
