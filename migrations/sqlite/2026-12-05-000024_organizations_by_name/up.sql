-- An import reuses the ownerless organisation of each name it meets
-- (`import::KnownOrganizations`), looking names up 1,000 at a time.
-- Without an index each look-up scanned every organisation: on PostgreSQL,
-- with one organisation per imported case, the 100,000th case's batch took
-- over 1.6 s and an import of 1,000,000 cases would have taken hours.
CREATE INDEX organizations_ownerless_name ON organizations(name) WHERE owner_user_id IS NULL;
