-- Open Hours (PRODUCT.md): short weekday talks at fixed times, bookable by
-- applicants. Slots follow rules (open_hours_settings) on the desk's
-- business days (holidays); a slot gets a row only when someone books it
-- or an admin changes it, and that row holds the seat count the database
-- enforces: a booking takes a seat with one conditional UPDATE
-- (booked < capacity), never a read then a write.

-- The desk's holidays (MEDESK_HOLIDAYS seeds them; admins manage them).
CREATE TABLE holidays (
    day TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);

-- One row (id = 1) once an admin changed the rules; absent: the defaults.
CREATE TABLE open_hours_settings (
    id INTEGER PRIMARY KEY,
    times TEXT NOT NULL,
    duration_minutes INTEGER NOT NULL,
    weekday_capacities TEXT NOT NULL,
    horizon_days INTEGER NOT NULL,
    updated_at BIGINT NOT NULL
);

-- id is the slot's start in minutes since the epoch: stable and known
-- before the row exists. capacity NULL follows the weekday's default.
CREATE TABLE open_hours_slots (
    id BIGINT PRIMARY KEY,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    capacity INTEGER,
    booked INTEGER NOT NULL DEFAULT 0,
    closed BOOLEAN NOT NULL DEFAULT 0,
    closed_reason TEXT,
    updated_at BIGINT NOT NULL,
    CHECK (booked >= 0),
    CHECK (capacity IS NULL OR booked <= capacity)
);
CREATE INDEX open_hours_slots_starts_at ON open_hours_slots (starts_at);

CREATE TABLE open_hours_bookings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slot_id BIGINT NOT NULL REFERENCES open_hours_slots (id),
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    organization_id BIGINT NOT NULL REFERENCES organizations (id),
    applicant_id BIGINT NOT NULL REFERENCES users (id),
    topic TEXT NOT NULL,
    product_type TEXT,
    categories TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL,
    status TEXT NOT NULL,
    case_id BIGINT REFERENCES cases (id),
    attended BOOLEAN,
    note TEXT,
    reminder_mail_id BIGINT,
    created_at BIGINT NOT NULL,
    cancelled_at BIGINT,
    updated_at BIGINT NOT NULL
);
-- One live booking per organisation and slot; a cancelled one frees it.
CREATE UNIQUE INDEX open_hours_bookings_one_per_organization
    ON open_hours_bookings (slot_id, organization_id) WHERE status = 'booked';
CREATE INDEX open_hours_bookings_starts_at ON open_hours_bookings (starts_at);
CREATE INDEX open_hours_bookings_organization ON open_hours_bookings (organization_id, starts_at);
CREATE INDEX open_hours_bookings_case ON open_hours_bookings (case_id);
