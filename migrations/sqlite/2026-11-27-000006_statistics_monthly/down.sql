DROP INDEX cases_closed;
DROP INDEX cases_triaged;
DROP TABLE stats_monthly_categories;
DROP TABLE stats_monthly_cases;
