-- Meetings: a video-call link for the invitation and the .ics, and meetings
-- recorded after they took place (no invitation), with notes.
ALTER TABLE meetings ADD COLUMN video_url TEXT;
ALTER TABLE meetings ADD COLUMN recorded BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE meetings ADD COLUMN notes TEXT;
