-- Several daemons: a running job is leased to one node (attempts is the fencing token),
-- nodes say they are alive, and a campaign's scheduled slot can be run once only.
ALTER TABLE video_generations ADD COLUMN claimed_by TEXT;
ALTER TABLE video_generations ADD COLUMN lease_until TEXT;
CREATE INDEX video_generations_lease ON video_generations (status, lease_until);
CREATE INDEX video_generations_claimed ON video_generations (claimed_by, status);

CREATE TABLE nodes (
    node_id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    started_at TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    renderers TEXT NOT NULL           -- JSON list of renderer names
);

-- NULL slots (runs made by hand) stay distinct, as before.
CREATE UNIQUE INDEX campaign_runs_slot ON campaign_runs (campaign_id, slot);
