-- Lighter outbox rows (issue 19): `message_id` is a timestamp and 64
-- random bits, unique without an index to prove it, and nothing looks mail
-- up by it; the index was one more write per queued mail.
ALTER TABLE outbox DROP CONSTRAINT outbox_message_id_key;
