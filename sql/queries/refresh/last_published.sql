-- Purpose: the newest published build, whose fingerprint decides whether a refresh has work.
-- Grain: at most one row (the published build with the highest run_id).
-- Parameters: none.
SELECT run_id, stamp, fingerprint, finished_at
FROM refresh_builds
WHERE status = 'published'
ORDER BY run_id DESC
LIMIT 1
