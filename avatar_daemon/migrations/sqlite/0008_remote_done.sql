-- The remote ids of a job's parts that any node has seen finished (comma-separated, like
-- external_id): a render cap shared by the nodes stops counting them at once, not when the job ends.
ALTER TABLE video_generations ADD COLUMN external_done TEXT;
