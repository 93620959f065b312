-- A publisher partner's platform MediaIds (issue 11): the call-data explorer, the pending
-- actions and the browsers show "Leadwave Media (98765)" instead of a bare number. A
-- MediaId belongs to at most one partner (PRIMARY KEY), so the name it shows is unambiguous.
CREATE TABLE partner_media (
    media_id    BIGINT PRIMARY KEY,
    partner_id  BIGINT NOT NULL
);
