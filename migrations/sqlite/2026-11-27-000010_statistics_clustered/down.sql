-- Back to rowid tables keyed (period, product_type[, category]).
CREATE TABLE stats_daily_cases_rowid (
    day TEXT NOT NULL,
    product_type TEXT NOT NULL,
    cases BIGINT NOT NULL,
    PRIMARY KEY (day, product_type)
);
INSERT INTO stats_daily_cases_rowid (day, product_type, cases) SELECT day, product_type, cases FROM stats_daily_cases;
DROP TABLE stats_daily_cases;
ALTER TABLE stats_daily_cases_rowid RENAME TO stats_daily_cases;

CREATE TABLE stats_daily_categories_rowid (
    day TEXT NOT NULL,
    product_type TEXT NOT NULL,
    category TEXT NOT NULL,
    cases BIGINT NOT NULL,
    PRIMARY KEY (day, product_type, category)
);
INSERT INTO stats_daily_categories_rowid (day, product_type, category, cases) SELECT day, product_type, category, cases FROM stats_daily_categories;
DROP TABLE stats_daily_categories;
ALTER TABLE stats_daily_categories_rowid RENAME TO stats_daily_categories;

CREATE TABLE stats_monthly_cases_rowid (
    month TEXT NOT NULL,
    product_type TEXT NOT NULL,
    cases BIGINT NOT NULL,
    PRIMARY KEY (month, product_type)
);
INSERT INTO stats_monthly_cases_rowid (month, product_type, cases) SELECT month, product_type, cases FROM stats_monthly_cases;
DROP TABLE stats_monthly_cases;
ALTER TABLE stats_monthly_cases_rowid RENAME TO stats_monthly_cases;

CREATE TABLE stats_monthly_categories_rowid (
    month TEXT NOT NULL,
    product_type TEXT NOT NULL,
    category TEXT NOT NULL,
    cases BIGINT NOT NULL,
    PRIMARY KEY (month, product_type, category)
);
INSERT INTO stats_monthly_categories_rowid (month, product_type, category, cases) SELECT month, product_type, category, cases FROM stats_monthly_categories;
DROP TABLE stats_monthly_categories;
ALTER TABLE stats_monthly_categories_rowid RENAME TO stats_monthly_categories;
