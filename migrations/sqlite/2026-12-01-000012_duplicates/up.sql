-- A case closed as a duplicate names the case it duplicates (its
-- original). One row per duplicate, deleted when the duplicate is reopened
-- (the timelines keep the history). Originals are never duplicates
-- themselves, so links are one step deep (desk::cases checks it).
CREATE TABLE case_duplicates (
    case_id BIGINT PRIMARY KEY REFERENCES cases(id),
    original_id BIGINT NOT NULL REFERENCES cases(id),
    linked_at BIGINT NOT NULL,
    CHECK (case_id <> original_id)
);
CREATE INDEX case_duplicates_original ON case_duplicates(original_id);

-- The cases closed as duplicates, counted like the statistics rollups
-- (db::stats): the same cells, kept in the transaction that closes a case
-- as a duplicate (+1) or reopens it (-1). The statistics subtract them from
-- the rollups unless asked to include duplicates; the rollups themselves
-- still count every case received.
CREATE TABLE stats_daily_duplicates (
    day TEXT NOT NULL,
    product_type TEXT NOT NULL,
    cases BIGINT NOT NULL,
    PRIMARY KEY (day, product_type)
) WITHOUT ROWID;

CREATE TABLE stats_daily_duplicate_categories (
    day TEXT NOT NULL,
    product_type TEXT NOT NULL,
    category TEXT NOT NULL,
    cases BIGINT NOT NULL,
    PRIMARY KEY (day, product_type, category)
) WITHOUT ROWID;

CREATE TABLE stats_monthly_duplicates (
    month TEXT NOT NULL,
    product_type TEXT NOT NULL,
    cases BIGINT NOT NULL,
    PRIMARY KEY (product_type, month)
) WITHOUT ROWID;

CREATE TABLE stats_monthly_duplicate_categories (
    month TEXT NOT NULL,
    product_type TEXT NOT NULL,
    category TEXT NOT NULL,
    cases BIGINT NOT NULL,
    PRIMARY KEY (product_type, category, month)
) WITHOUT ROWID;
