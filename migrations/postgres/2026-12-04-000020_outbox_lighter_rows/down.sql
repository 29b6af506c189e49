ALTER TABLE outbox ADD CONSTRAINT outbox_message_id_key UNIQUE (message_id);
