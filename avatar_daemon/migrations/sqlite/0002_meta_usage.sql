-- Small key/value state (instance id, a remote webhook secret) and paid-render accounting.
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('instance_id', lower(hex(randomblob(6))));

CREATE TABLE renderer_usage (
    job_id INTEGER PRIMARY KEY REFERENCES video_generations (id),
    renderer TEXT NOT NULL,
    campaign_id INTEGER,
    seconds REAL NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX renderer_usage_at ON renderer_usage (renderer, at);
