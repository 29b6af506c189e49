-- Password reset ends every session of the account.
-- session_generation: access tokens carry the generation they were issued
-- in; a reset (or any password set with a mailed token) increments it, and
-- tokens of an older generation stop working. sessions_ended_at: when that
-- last happened, so that every instance can learn of recent ends cheaply.
ALTER TABLE users ADD COLUMN session_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN sessions_ended_at BIGINT;
CREATE INDEX users_sessions_ended_at ON users(sessions_ended_at);
-- Outstanding password tokens of an account are looked up by user when one
-- is used (the others are used up with it) and when refresh tokens are revoked.
CREATE INDEX password_tokens_user ON password_tokens(user_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens(user_id);
