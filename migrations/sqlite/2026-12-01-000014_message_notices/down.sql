DROP TABLE message_notices;
