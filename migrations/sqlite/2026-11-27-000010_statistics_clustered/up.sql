-- The rollup tables become WITHOUT ROWID: each cell lives in its primary
-- key's B-tree, so an upsert writes one B-tree instead of two (table and
-- autoindex) and a range read needs no rowid lookup per cell. The monthly
-- tables are keyed by (product_type, [category,] month): the category table
-- groups by product type and category, and reading the cells in key order
-- lets SQLite sum each group as it scans instead of sorting every cell of
-- the range in a temporary B-tree (2.6 ms → 0.85 ms for 7 years of 5,000
-- cases). PostgreSQL aggregates by hashing and keeps its tables.
CREATE TABLE stats_daily_cases_clustered (
    day TEXT NOT NULL,
    product_type TEXT NOT NULL,
    cases BIGINT NOT NULL,
    PRIMARY KEY (day, product_type)
) WITHOUT ROWID;
INSERT INTO stats_daily_cases_clustered (day, product_type, cases)
SELECT day, product_type, cases FROM stats_daily_cases;
DROP TABLE stats_daily_cases;
ALTER TABLE stats_daily_cases_clustered RENAME TO stats_daily_cases;

CREATE TABLE stats_daily_categories_clustered (
    day TEXT NOT NULL,
    product_type TEXT NOT NULL,
    category TEXT NOT NULL,
    cases BIGINT NOT NULL,
    PRIMARY KEY (day, product_type, category)
) WITHOUT ROWID;
INSERT INTO stats_daily_categories_clustered (day, product_type, category, cases)
SELECT day, product_type, category, cases FROM stats_daily_categories;
DROP TABLE stats_daily_categories;
ALTER TABLE stats_daily_categories_clustered RENAME TO stats_daily_categories;

CREATE TABLE stats_monthly_cases_clustered (
    month TEXT NOT NULL,
    product_type TEXT NOT NULL,
    cases BIGINT NOT NULL,
    PRIMARY KEY (product_type, month)
) WITHOUT ROWID;
INSERT INTO stats_monthly_cases_clustered (month, product_type, cases)
SELECT month, product_type, cases FROM stats_monthly_cases;
DROP TABLE stats_monthly_cases;
ALTER TABLE stats_monthly_cases_clustered RENAME TO stats_monthly_cases;

CREATE TABLE stats_monthly_categories_clustered (
    month TEXT NOT NULL,
    product_type TEXT NOT NULL,
    category TEXT NOT NULL,
    cases BIGINT NOT NULL,
    PRIMARY KEY (product_type, category, month)
) WITHOUT ROWID;
INSERT INTO stats_monthly_categories_clustered (month, product_type, category, cases)
SELECT month, product_type, category, cases FROM stats_monthly_categories;
DROP TABLE stats_monthly_categories;
ALTER TABLE stats_monthly_categories_clustered RENAME TO stats_monthly_categories;
