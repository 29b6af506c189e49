-- Cases, their category tags, timeline, messages, access log, numbering.
CREATE TABLE case_counters (
    year INTEGER PRIMARY KEY,
    last BIGINT NOT NULL
);

CREATE TABLE cases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    number TEXT NOT NULL UNIQUE,
    organization_id BIGINT NOT NULL REFERENCES organizations(id),
    applicant_id BIGINT REFERENCES users(id),
    filed_by BIGINT REFERENCES users(id),
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    product_type TEXT NOT NULL,
    stage TEXT NOT NULL,
    language TEXT NOT NULL,
    organization_name TEXT NOT NULL,
    organization_kind TEXT NOT NULL,
    status TEXT NOT NULL,
    resume_to TEXT,
    outcome TEXT,
    priority TEXT,
    confirmed_product_type TEXT,
    -- confirmed_product_type once triaged, else the applicant's: what
    -- statistics and filters count.
    effective_product_type TEXT NOT NULL,
    route TEXT,
    refer_to TEXT,
    claimed_by BIGINT REFERENCES users(id),
    -- The received date on the desk's calendar (Asia/Tokyo), for statistics.
    received_on TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    triaged_at BIGINT,
    closed_at BIGINT,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX cases_received ON cases(received_at DESC, id DESC);
CREATE INDEX cases_organization ON cases(organization_id, received_at DESC, id DESC);
CREATE INDEX cases_status ON cases(status, received_at);

-- One row per category of a case; kind 'applicant' is what the applicant
-- chose, 'confirmed' what triage confirmed.
CREATE TABLE case_categories (
    case_id BIGINT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('applicant', 'confirmed')),
    category TEXT NOT NULL,
    -- true for the set that counts: confirmed once triaged, else applicant's
    effective BOOLEAN NOT NULL,
    PRIMARY KEY (case_id, kind, category)
);
CREATE INDEX case_categories_effective ON case_categories(category, effective, case_id);

CREATE TABLE case_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id BIGINT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    actor_id BIGINT REFERENCES users(id),
    kind TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT,
    detail TEXT,
    -- 'all' or 'desk' (desk-side only: internal notes and messages)
    audience TEXT NOT NULL DEFAULT 'all'
);
CREATE INDEX case_events_case ON case_events(case_id, id);

CREATE TABLE case_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id BIGINT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    author_id BIGINT NOT NULL REFERENCES users(id),
    visibility TEXT NOT NULL CHECK (visibility IN ('internal', 'applicant')),
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX case_messages_case ON case_messages(case_id, id);

CREATE TABLE case_access_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id BIGINT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id),
    at BIGINT NOT NULL,
    what TEXT NOT NULL
);
CREATE INDEX case_access_log_case ON case_access_log(case_id, id);
CREATE INDEX case_access_log_user ON case_access_log(user_id, id);

CREATE TABLE invitations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organization_id BIGINT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    invited_by BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
