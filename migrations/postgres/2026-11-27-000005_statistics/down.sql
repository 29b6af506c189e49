DROP TABLE stats_daily_categories;
DROP TABLE stats_daily_cases;
