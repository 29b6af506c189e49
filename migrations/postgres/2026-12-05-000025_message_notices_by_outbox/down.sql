DROP INDEX message_notices_outbox;
