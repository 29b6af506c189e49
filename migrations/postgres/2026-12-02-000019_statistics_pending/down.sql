-- The cases still pending are counted into the rollups (as the fold would)
-- before their queue goes.
WITH counted AS (
    SELECT id, received_on AS day, effective_product_type AS product_type
    FROM cases WHERE id IN (SELECT case_id FROM stats_pending)
), counted_categories AS (
    SELECT counted.day, counted.product_type, case_categories.category
    FROM counted JOIN case_categories
        ON case_categories.case_id = counted.id AND case_categories.effective
), daily AS (
    INSERT INTO stats_daily_cases AS cell (day, product_type, cases)
    SELECT day, product_type, count(*) FROM counted
    GROUP BY day, product_type ORDER BY day, product_type
    ON CONFLICT (day, product_type) DO UPDATE SET cases = cell.cases + excluded.cases
), monthly AS (
    INSERT INTO stats_monthly_cases AS cell (month, product_type, cases)
    SELECT substr(day, 1, 7), product_type, count(*) FROM counted
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (month, product_type) DO UPDATE SET cases = cell.cases + excluded.cases
), daily_categories AS (
    INSERT INTO stats_daily_categories AS cell (day, product_type, category, cases)
    SELECT day, product_type, category, count(*) FROM counted_categories
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (day, product_type, category) DO UPDATE SET cases = cell.cases + excluded.cases
)
INSERT INTO stats_monthly_categories AS cell (month, product_type, category, cases)
SELECT substr(day, 1, 7), product_type, category, count(*) FROM counted_categories
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
ON CONFLICT (month, product_type, category) DO UPDATE SET cases = cell.cases + excluded.cases;

DROP TABLE stats_pending;
