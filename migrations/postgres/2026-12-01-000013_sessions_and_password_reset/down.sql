DROP INDEX refresh_tokens_user;
DROP INDEX password_tokens_user;
DROP INDEX users_sessions_ended_at;
ALTER TABLE users DROP COLUMN sessions_ended_at;
ALTER TABLE users DROP COLUMN session_generation;
