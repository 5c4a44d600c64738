-- Purpose: the latest refresh runs for `registry status`: when, how long, how each ended and
-- the step that failed (if any) and the step still marked running (if any).
-- Grain: one row per run_id, newest first.
-- Parameters: $limit (number of runs).
SELECT
    run_id,
    min(started_at) AS started_at,
    max(finished_at) AS finished_at,
    CASE
        WHEN count(*) FILTER (WHERE status = 'failed') > 0 THEN 'failed'
        WHEN count(*) FILTER (WHERE status = 'interrupted') > 0 THEN 'interrupted'
        WHEN count(*) FILTER (WHERE status = 'running') > 0 THEN 'running'
        WHEN count(*) FILTER (WHERE step = 'publish' AND status = 'ok') > 0 THEN 'published'
        ELSE 'no work'
    END AS status,
    string_agg(step, ', ') FILTER (WHERE status IN ('failed', 'interrupted')) AS failed_step,
    string_agg(message, '; ') FILTER (WHERE status IN ('failed', 'interrupted')) AS message,
    string_agg(step, ', ') FILTER (WHERE status = 'running') AS running_step
FROM refresh_runs
GROUP BY run_id
ORDER BY run_id DESC
LIMIT $limit
