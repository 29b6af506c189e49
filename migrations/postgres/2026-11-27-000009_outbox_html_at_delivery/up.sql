-- The HTML alternative of a mail is rendered from its subject and text when
-- it is sent, not stored beside them (it more than doubled every queued
-- mail). New rows leave body_html NULL and keep what that rendering needs;
-- rows queued before keep their stored HTML.
ALTER TABLE outbox ADD COLUMN locale TEXT;
ALTER TABLE outbox ADD COLUMN link TEXT;
