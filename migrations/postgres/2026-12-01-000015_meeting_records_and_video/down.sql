ALTER TABLE meetings
    DROP COLUMN notes,
    DROP COLUMN recorded,
    DROP COLUMN video_url;
