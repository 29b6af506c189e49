//! Desk administration: the access log and the mail outbox.
