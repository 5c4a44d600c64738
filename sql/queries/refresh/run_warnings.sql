-- Purpose: the files that needed attention in the latest refresh runs (refused, not
-- recognised, entirely quarantined), for `registry status` and the history page.
-- Grain: one row per warning of a run, ordered by run, kind and file.
-- Parameters: $first_run (the lowest run_id wanted; 0 for every run).
SELECT run_id, kind, file, reason
FROM refresh_warnings
WHERE run_id >= $first_run
ORDER BY run_id, kind, file
