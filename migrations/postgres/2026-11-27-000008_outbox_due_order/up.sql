-- The worker claims due mails in the order they fell due; with the id in the
-- index the claim reads its batch off the index instead of sorting every
-- pending mail (a backlog of 100,000 mails made each claim a full scan).
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox(state, next_attempt_at, id);
