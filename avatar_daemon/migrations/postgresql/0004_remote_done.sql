-- SQLite's 0008_remote_done.sql in PostgreSQL's types (see there for what the column holds).
ALTER TABLE video_generations ADD COLUMN external_done text;
