-- Back to the check as migration 000020 wrote it.
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
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
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
