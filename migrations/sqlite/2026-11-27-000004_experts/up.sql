-- Expert registry, assignments, meetings and support plans.
CREATE TABLE experts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL UNIQUE REFERENCES users(id),
    name TEXT NOT NULL,
    affiliation TEXT NOT NULL,
    capacity INTEGER NOT NULL,
    -- Paused while today (desk calendar) is before this date.
    paused_until TEXT,
    last_assigned_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE expert_expertise (
    expert_id BIGINT NOT NULL REFERENCES experts(id) ON DELETE CASCADE,
    category TEXT NOT NULL,
    level INTEGER NOT NULL CHECK (level BETWEEN 1 AND 3),
    PRIMARY KEY (expert_id, category)
);

CREATE TABLE expert_product_types (
    expert_id BIGINT NOT NULL REFERENCES experts(id) ON DELETE CASCADE,
    product_type TEXT NOT NULL,
    PRIMARY KEY (expert_id, product_type)
);

CREATE TABLE expert_languages (
    expert_id BIGINT NOT NULL REFERENCES experts(id) ON DELETE CASCADE,
    language TEXT NOT NULL,
    PRIMARY KEY (expert_id, language)
);

-- Organisations the expert must not advise; `normalized` is the comparison
-- key (NFKC, case, spacing and legal forms removed).
CREATE TABLE expert_conflicts (
    expert_id BIGINT NOT NULL REFERENCES experts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    normalized TEXT NOT NULL,
    PRIMARY KEY (expert_id, name)
);

CREATE TABLE assignments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id BIGINT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    expert_id BIGINT NOT NULL REFERENCES experts(id),
    role TEXT NOT NULL CHECK (role IN ('lead', 'member')),
    status TEXT NOT NULL CHECK (status IN ('proposed', 'accepted', 'declined', 'withdrawn', 'completed')),
    assigned_by BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    responded_at BIGINT,
    ended_at BIGINT,
    decline_reason TEXT,
    terms_version TEXT,
    acknowledged_at BIGINT
);
CREATE INDEX assignments_case ON assignments(case_id, status);
CREATE INDEX assignments_expert ON assignments(expert_id, status);
-- One lead per case, one active assignment per expert and case.
CREATE UNIQUE INDEX assignments_one_lead ON assignments(case_id)
    WHERE role = 'lead' AND status IN ('proposed', 'accepted');
CREATE UNIQUE INDEX assignments_one_active ON assignments(case_id, expert_id)
    WHERE status IN ('proposed', 'accepted');

CREATE TABLE meetings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id BIGINT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    expert_id BIGINT NOT NULL REFERENCES experts(id),
    starts_at BIGINT NOT NULL,
    duration_minutes INTEGER NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('online', 'onsite')),
    advice_summary TEXT,
    created_by BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX meetings_case ON meetings(case_id, starts_at);

CREATE TABLE support_plans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id BIGINT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL,
    author_id BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    UNIQUE (case_id, revision)
);

-- Single-use tokens to set a password (experts registered without one).
CREATE TABLE password_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
