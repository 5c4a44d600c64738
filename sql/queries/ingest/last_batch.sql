-- Purpose: the latest ingest batch id (0 when none), taken before a file loads so
-- that an interrupted run can tell whether the file's transaction committed.
-- Grain: one row.
-- Parameters: none.
SELECT coalesce(max(batch_id), 0) AS batch_id
FROM ingest_batches
