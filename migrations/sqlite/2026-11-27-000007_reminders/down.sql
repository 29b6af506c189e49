ALTER TABLE cases DROP COLUMN overdue_notified_at;
