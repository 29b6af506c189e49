-- Daily rollups for the category table, kept in the same transaction as
-- every change that affects them (intake, triage, import). They count each
-- case under its effective product type and categories on its received date
-- (desk calendar). A recount from cases/case_categories must always equal them.
CREATE TABLE stats_daily_cases (
    day TEXT NOT NULL,
    product_type TEXT NOT NULL,
    cases BIGINT NOT NULL,
    PRIMARY KEY (day, product_type)
);

CREATE TABLE stats_daily_categories (
    day TEXT NOT NULL,
    product_type TEXT NOT NULL,
    category TEXT NOT NULL,
    cases BIGINT NOT NULL,
    PRIMARY KEY (day, product_type, category)
);
