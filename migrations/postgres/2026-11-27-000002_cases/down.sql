DROP TABLE invitations;
DROP TABLE case_access_log;
DROP TABLE case_messages;
DROP TABLE case_events;
DROP TABLE case_categories;
DROP TABLE cases;
DROP TABLE case_counters;
