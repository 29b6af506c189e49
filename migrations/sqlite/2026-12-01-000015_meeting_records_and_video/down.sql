ALTER TABLE meetings DROP COLUMN notes;
ALTER TABLE meetings DROP COLUMN recorded;
ALTER TABLE meetings DROP COLUMN video_url;
