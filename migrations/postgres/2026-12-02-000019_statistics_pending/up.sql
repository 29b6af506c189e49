-- PostgreSQL only: cases filed but not yet counted in the statistics
-- rollups. An intake inserts its case id here instead of updating the day's
-- rollup rows (which every intake of the day would update, the work that
-- limited intake); a background fold moves the pending cases into the
-- rollups a few times a second (db::stats::fold_pending), and the
-- statistics add the cases still pending, so they stay exact at every commit.
-- SQLite's writer already sums a whole group commit's cells into one upsert each.
CREATE TABLE stats_pending (case_id BIGINT PRIMARY KEY);
