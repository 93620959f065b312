-- Expected delivery and its alerts (issue 12, part 5). Per connection: when files are due
-- (`expect`, in the connection's time zone), the grace after that, the tolerated row-count
-- drift in percent (NULL: not checked) and who is told (`owner_email`, else the partner's
-- return address).
ALTER TABLE connections ADD COLUMN expect VARCHAR;
ALTER TABLE connections ADD COLUMN expect_grace_minutes INTEGER DEFAULT 60;
ALTER TABLE connections ADD COLUMN volume_tolerance INTEGER;
ALTER TABLE connections ADD COLUMN owner_email VARCHAR;
UPDATE connections SET expect_grace_minutes = 60 WHERE expect_grace_minutes IS NULL;

-- One alert per problem, raised once (`dedupe_key`: the slot or the file it is about) and
-- cleared when the file arrives or the next file is back in range.
CREATE SEQUENCE IF NOT EXISTS seq_delivery_alerts;

CREATE TABLE delivery_alerts (
    id            BIGINT PRIMARY KEY DEFAULT nextval('seq_delivery_alerts'),
    connection_id BIGINT NOT NULL,
    kind          VARCHAR NOT NULL,           -- late | missing | volume_drift | reject_spike
    raised_at     TIMESTAMPTZ NOT NULL,
    cleared_at    TIMESTAMPTZ,
    message       VARCHAR NOT NULL,           -- may hold partner text: escape when shown
    notified      BOOLEAN NOT NULL DEFAULT FALSE,  -- whether the owner was e-mailed
    dedupe_key    VARCHAR NOT NULL,
    clear_note    VARCHAR
);
