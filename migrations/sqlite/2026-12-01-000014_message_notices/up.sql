-- The latest notice of new messages to one person about one case
-- (domain::notice): when it goes or went, how many messages it tells of,
-- and its outbox row, which later messages join while it waits. One row
-- per (case, person): posting a message locks it, so two writers never
-- both decide to mail.
CREATE TABLE message_notices (
    case_id BIGINT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    due_at BIGINT NOT NULL,
    messages INTEGER NOT NULL,
    outbox_id BIGINT REFERENCES outbox(id) ON DELETE SET NULL,
    PRIMARY KEY (case_id, user_id)
);
