-- A connection's history beyond its runs: decisions that have no run of their own (a mail
-- whose attachments match nothing, a scheduled trigger skipped while a run was going).
-- `dedupe_key` makes a decision recorded once (a message by its Message-ID, skipped triggers
-- coalesced per run they waited on: `count` grows, `message` is rewritten).
CREATE SEQUENCE IF NOT EXISTS seq_connection_events;

CREATE TABLE connection_events (
    id            BIGINT PRIMARY KEY DEFAULT nextval('seq_connection_events'),
    connection_id BIGINT NOT NULL,
    occurred_at   TIMESTAMPTZ NOT NULL,       -- first time the decision was made
    last_at       TIMESTAMPTZ NOT NULL,       -- latest time (coalesced events)
    kind          VARCHAR NOT NULL,           -- mail_unmatched, trigger_skipped, ...
    message       VARCHAR NOT NULL,           -- may hold partner text: escape when shown
    count         INTEGER NOT NULL DEFAULT 1,
    run_id        BIGINT,                     -- the run it concerns, if any
    sender        VARCHAR,                    -- lower-case address a mail came from
    answered      BOOLEAN NOT NULL DEFAULT FALSE,  -- whether the sender was told by e-mail
    dedupe_key    VARCHAR
);
