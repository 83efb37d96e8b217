-- Campaign state beyond the file: a pause survives edits and restarts; runs and used insights are history.
ALTER TABLE video_campaigns ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
ALTER TABLE video_campaigns ADD COLUMN removed_at TEXT;

CREATE TABLE campaign_runs (
    id INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES video_campaigns (id),
    slot TEXT,                        -- the scheduled time this run answers (NULL: run by hand)
    trigger TEXT NOT NULL,            -- schedule, catch-up, manual, batch
    considered TEXT NOT NULL,         -- JSON: every research looked at and the verdict
    chosen TEXT NOT NULL,             -- JSON: what became videos and why
    job_ids TEXT NOT NULL,
    message TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX campaign_runs_campaign ON campaign_runs (campaign_id, id);

CREATE TABLE campaign_insights (
    campaign_id INTEGER NOT NULL REFERENCES video_campaigns (id),
    key TEXT NOT NULL,                -- a used insight's URL or normalised text
    run_id INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, key)
);
