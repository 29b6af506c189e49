DROP TABLE open_hours_bookings;
DROP TABLE open_hours_slots;
DROP TABLE open_hours_settings;
DROP TABLE holidays;
