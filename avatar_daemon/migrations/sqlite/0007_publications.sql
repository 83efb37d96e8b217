-- Publishing: one row per (video, platform, account), so a video is never posted twice there.
-- `state` is where it got to (pending, uploading, processing, published, failed); `facts` is
-- what the publisher saved on the way (a session URI, a confirmed offset, the platform's id),
-- handed back after a crash so the upload resumes instead of starting over. A claim is leased
-- to one node like a job's, `attempts` its fencing token; `not_before` holds it back (a quota
-- that resets at midnight Pacific, a retry's backoff).
CREATE TABLE publications (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL REFERENCES video_generations (id),
    platform TEXT NOT NULL,
    account TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    percent REAL NOT NULL DEFAULT 0,
    facts TEXT NOT NULL DEFAULT '{}',        -- JSON
    options TEXT NOT NULL DEFAULT '{}',      -- JSON: PublishOptions as requested
    upload_offset INTEGER,                   -- bytes the platform confirmed, from facts["offset"]
    remote_id TEXT,
    url TEXT,
    error TEXT,
    message TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,     -- claims; the fencing token
    failures INTEGER NOT NULL DEFAULT 0,     -- transient failures in a row, for the backoff
    not_before TEXT,
    claimed_by TEXT,
    lease_until TEXT,
    requested_by TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    published_at TEXT,
    UNIQUE (job_id, platform, account)
);
CREATE INDEX publications_due ON publications (state, not_before);
CREATE INDEX publications_claimed ON publications (claimed_by);

-- A platform's figures for a post, the latest value only (views, likes, comments as the
-- platform reports them now), beside the daemon's own download counts.
CREATE TABLE platform_figures (
    publication_id INTEGER PRIMARY KEY REFERENCES publications (id),
    video_id INTEGER NOT NULL REFERENCES video_generations (id),
    platform TEXT NOT NULL,
    views INTEGER NOT NULL DEFAULT 0,
    likes INTEGER NOT NULL DEFAULT 0,
    comments INTEGER NOT NULL DEFAULT 0,
    fetched_at TEXT NOT NULL
);
CREATE INDEX platform_figures_video ON platform_figures (video_id);
