-- Meetings: a video-call link for the invitation and the .ics, and meetings
-- recorded after they took place (no invitation), with notes.
ALTER TABLE meetings
    ADD COLUMN video_url TEXT,
    ADD COLUMN recorded BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN notes TEXT;
