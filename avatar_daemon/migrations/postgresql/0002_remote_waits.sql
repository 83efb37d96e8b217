-- SQLite's 0006: a remote render (HeyGen) waits in `waiting_remote` holding no slot and no node until
-- its next check; `remote_since` is when it began waiting, for its timeout. Events name the node
-- that wrote them.
ALTER TABLE video_generations ADD COLUMN next_check_at timestamptz;
ALTER TABLE video_generations ADD COLUMN remote_since timestamptz;
-- What a check claim scans: a renderer's waiting jobs, the most overdue first.
CREATE INDEX video_generations_checks ON video_generations (renderer, next_check_at) WHERE status = 'waiting_remote';
ALTER TABLE events ADD COLUMN node_id text;
