-- Which research each campaign has considered, as the highest research id it has looked at.
-- SQLite assigns ids inside the single writer's transaction, so ids commit in order and
-- "above the mark" cannot race a commit the way two clocks did (a row stamped before a run
-- began but committed after its query was skipped by every later run). Advanced in the
-- same transaction as the run's record.
ALTER TABLE video_campaigns ADD COLUMN considered_through INTEGER NOT NULL DEFAULT 0;

-- Upgrading: the old rule considered research created at or after the last run.
UPDATE video_campaigns SET considered_through =
    (SELECT coalesce(max(r.id), 0) FROM research_jobs r WHERE r.created_at < video_campaigns.last_run_at)
    WHERE last_run_at IS NOT NULL;
