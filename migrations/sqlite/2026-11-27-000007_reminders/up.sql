-- Set once when supporters were told the case is overdue for triage.
ALTER TABLE cases ADD COLUMN overdue_notified_at BIGINT;
