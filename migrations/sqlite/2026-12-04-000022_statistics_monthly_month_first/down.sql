-- Back to (product_type, [category,] month), as migrations 000010 and 000012 left them.

CREATE TABLE stats_monthly_cases_by_group (
    month TEXT NOT NULL,
    product_type TEXT NOT NULL,
    cases BIGINT NOT NULL,
    PRIMARY KEY (product_type, month)
) WITHOUT ROWID;
INSERT INTO stats_monthly_cases_by_group (month, product_type, cases)
SELECT month, product_type, cases FROM stats_monthly_cases;
DROP TABLE stats_monthly_cases;
ALTER TABLE stats_monthly_cases_by_group RENAME TO stats_monthly_cases;

CREATE TABLE stats_monthly_categories_by_group (
    month TEXT NOT NULL,
    product_type TEXT NOT NULL,
    category TEXT NOT NULL,
    cases BIGINT NOT NULL,
    PRIMARY KEY (product_type, category, month)
) WITHOUT ROWID;
INSERT INTO stats_monthly_categories_by_group (month, product_type, category, cases)
SELECT month, product_type, category, cases FROM stats_monthly_categories;
DROP TABLE stats_monthly_categories;
ALTER TABLE stats_monthly_categories_by_group RENAME TO stats_monthly_categories;

CREATE TABLE stats_monthly_duplicates_by_group (
    month TEXT NOT NULL,
    product_type TEXT NOT NULL,
    cases BIGINT NOT NULL,
    PRIMARY KEY (product_type, month)
) WITHOUT ROWID;
INSERT INTO stats_monthly_duplicates_by_group (month, product_type, cases)
SELECT month, product_type, cases FROM stats_monthly_duplicates;
DROP TABLE stats_monthly_duplicates;
ALTER TABLE stats_monthly_duplicates_by_group RENAME TO stats_monthly_duplicates;

CREATE TABLE stats_monthly_duplicate_categories_by_group (
    month TEXT NOT NULL,
    product_type TEXT NOT NULL,
    category TEXT NOT NULL,
    cases BIGINT NOT NULL,
    PRIMARY KEY (product_type, category, month)
) WITHOUT ROWID;
INSERT INTO stats_monthly_duplicate_categories_by_group (month, product_type, category, cases)
SELECT month, product_type, category, cases FROM stats_monthly_duplicate_categories;
DROP TABLE stats_monthly_duplicate_categories;
ALTER TABLE stats_monthly_duplicate_categories_by_group RENAME TO stats_monthly_duplicate_categories;
