-- Browser sessions of the app (connectbatch/services/sessions.py): a login lasts through a
-- reload and in other tabs until it ends (Log out, CONNECTBATCH_SESSION_HOURS after the login,
-- the user disabled or given a new password). Only a SHA-256 of each token is kept.
-- A 'handoff' is the one-use token the logged-in page gives its browser to trade for the
-- session cookie (two minutes); a 'session' is what the cookie holds.
CREATE TABLE app_sessions (
    token_hash    VARCHAR PRIMARY KEY,
    kind          VARCHAR NOT NULL,      -- handoff | session
    user_name     VARCHAR NOT NULL,
    logged_in_at  TIMESTAMPTZ NOT NULL,  -- the login; the session ends session_hours after it
    expires_at    TIMESTAMPTZ NOT NULL,
    handoff_hash  VARCHAR                -- a session: the handoff it was traded for
);
