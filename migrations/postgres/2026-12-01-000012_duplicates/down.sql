DROP TABLE stats_monthly_duplicate_categories;
DROP TABLE stats_monthly_duplicates;
DROP TABLE stats_daily_duplicate_categories;
DROP TABLE stats_daily_duplicates;
DROP TABLE case_duplicates;
