-- A signed-in browser: the cookie holds a random token, the table its
-- SHA-256 hash, so a copy of the database opens no session. Each session
-- has its own CSRF token; it ends at logout, after an idle period, or at
-- its absolute expiry.
CREATE TABLE browser_sessions (
    id BIGSERIAL PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX browser_sessions_user_id ON browser_sessions (user_id);
CREATE INDEX browser_sessions_expires_at ON browser_sessions (expires_at);
