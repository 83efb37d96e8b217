-- Tables from the seed, adapted: Slack team = workspace, Slack user = user.
CREATE TABLE avatar_profiles (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    tier TEXT NOT NULL,
    profile TEXT NOT NULL,            -- the whole AvatarProfile as JSON
    updated_at TEXT NOT NULL
);

CREATE TABLE research_jobs (
    id INTEGER PRIMARY KEY,
    content_hash TEXT NOT NULL UNIQUE, -- re-dropped or recovered files never make new jobs
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    topic TEXT NOT NULL,
    filename TEXT,
    research TEXT NOT NULL,
    script TEXT NOT NULL,
    workspace_id TEXT,
    user_id TEXT,
    campaign_id INTEGER,
    created_at TEXT NOT NULL
);
CREATE INDEX research_jobs_created ON research_jobs (created_at);

CREATE TABLE video_templates (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    template TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE video_campaigns (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    path TEXT,
    active INTEGER NOT NULL DEFAULT 1,
    definition TEXT NOT NULL DEFAULT '{}',
    next_run_at TEXT,
    last_run_at TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE video_generations (
    id INTEGER PRIMARY KEY,
    research_job_id INTEGER REFERENCES research_jobs (id),
    campaign_id INTEGER REFERENCES video_campaigns (id),
    status TEXT NOT NULL,
    percent REAL NOT NULL DEFAULT 0,
    renderer TEXT NOT NULL,
    format TEXT NOT NULL,
    avatar_id TEXT NOT NULL,
    template_id TEXT,
    title TEXT NOT NULL,
    request TEXT NOT NULL,            -- settings beyond the columns, as JSON
    external_id TEXT,
    result TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    workspace_id TEXT,
    user_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
);
CREATE INDEX video_generations_status ON video_generations (status, id);
CREATE INDEX video_generations_owner ON video_generations (workspace_id, user_id);

CREATE TABLE video_analytics (
    id INTEGER PRIMARY KEY,
    video_id INTEGER NOT NULL REFERENCES video_generations (id),
    event TEXT NOT NULL,
    platform TEXT,
    at TEXT NOT NULL
);
CREATE INDEX video_analytics_video ON video_analytics (video_id);

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL,
    state TEXT NOT NULL,
    percent REAL,
    message TEXT NOT NULL,
    data TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX events_job ON events (job_id, id);
