-- The outbox's state check without `IN`. SQLite evaluates a CHECK's `IN
-- (list)` of three or more values by building a temporary B-tree of the
-- list every time it checks a row: every queued mail (two per intake) and
-- every change of state opened, filled and closed one, about 5 % of the
-- SQLite writer's time at full intake (issue 19, sixteenth round).
-- Comparisons joined by OR check the same three values without it.
--
-- SQLite cannot change a CHECK in place: the table is rebuilt as migration
-- 000020 did, keeping the waiting notices' mail ids.
CREATE TEMP TABLE waiting_notice_mails AS
    SELECT case_id, user_id, outbox_id FROM message_notices WHERE outbox_id IS NOT NULL;

CREATE TABLE outbox_rebuilt (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    case_id BIGINT REFERENCES cases(id) ON DELETE SET NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT,
    calendar TEXT,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state = 'pending' OR state = 'sent' OR state = 'failed'),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    locale TEXT,
    link TEXT
);
INSERT INTO outbox_rebuilt
    SELECT id, message_id, kind, case_id, recipient, subject, body_text, body_html, calendar,
           state, attempts, next_attempt_at, locked_until, last_error, created_at, sent_at,
           locale, link
    FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_rebuilt RENAME TO outbox;
CREATE INDEX outbox_due ON outbox(state, next_attempt_at, id);

UPDATE message_notices
SET outbox_id = (
    SELECT kept.outbox_id FROM waiting_notice_mails AS kept
    WHERE kept.case_id = message_notices.case_id AND kept.user_id = message_notices.user_id
)
WHERE EXISTS (
    SELECT 1 FROM waiting_notice_mails AS kept
    WHERE kept.case_id = message_notices.case_id AND kept.user_id = message_notices.user_id
);
DROP TABLE waiting_notice_mails;
