-- Monthly rollups beside the daily ones: a range is summed from whole months
-- here plus the partial months at its ends from the daily tables, so the
-- category table reads at most a few thousand rows for any range (ten years
-- of daily cells are ~130,000 rows). Kept in the same transactions as the
-- daily cells (db::stats::add_counts); `month` is 'YYYY-MM'.
CREATE TABLE stats_monthly_cases (
    month TEXT NOT NULL,
    product_type TEXT NOT NULL,
    cases BIGINT NOT NULL,
    PRIMARY KEY (month, product_type)
);

CREATE TABLE stats_monthly_categories (
    month TEXT NOT NULL,
    product_type TEXT NOT NULL,
    category TEXT NOT NULL,
    cases BIGINT NOT NULL,
    PRIMARY KEY (month, product_type, category)
);

INSERT INTO stats_monthly_cases (month, product_type, cases)
SELECT substr(day, 1, 7), product_type, SUM(cases)
FROM stats_daily_cases
GROUP BY substr(day, 1, 7), product_type;

INSERT INTO stats_monthly_categories (month, product_type, category, cases)
SELECT substr(day, 1, 7), product_type, category, SUM(cases)
FROM stats_daily_categories
GROUP BY substr(day, 1, 7), product_type, category;

-- The pipeline's medians read only the cases triaged (or closed) in medesk,
-- never the bulk of imported records, which have neither time.
CREATE INDEX cases_triaged ON cases(received_on) WHERE triaged_at IS NOT NULL;
CREATE INDEX cases_closed ON cases(received_on) WHERE closed_at IS NOT NULL;
