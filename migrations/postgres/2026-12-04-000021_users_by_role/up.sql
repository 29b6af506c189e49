-- Every intake reads the applicant and every supporter in one statement
-- (`users::filing_parties`: `id = ? OR role = 'supporter'`), and the desk's
-- mail reads the supporters by role. Without an index on the role both
-- scanned every account, applicants included, once per case.
CREATE INDEX users_role ON users(role);
