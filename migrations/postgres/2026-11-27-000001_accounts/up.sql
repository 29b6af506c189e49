-- Accounts: organisations, users, refresh tokens.
-- Times are Unix microseconds (BIGINT) on both backends: one Rust type, exact ordering.
CREATE TABLE organizations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'startup',
    owner_user_id BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('applicant','supporter','expert','manager','admin')),
    locale TEXT NOT NULL DEFAULT 'ja' CHECK (locale IN ('ja','en')),
    organization_id BIGINT REFERENCES organizations(id),
    created_at BIGINT NOT NULL
);
CREATE INDEX users_organization ON users(organization_id);

CREATE TABLE refresh_tokens (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    family TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    rotated_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family);
