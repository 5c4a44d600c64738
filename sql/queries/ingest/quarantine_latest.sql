-- Purpose: the quarantined rows of the latest loaded batch of every file path.
-- Grain: one row per quarantined input line.
-- Parameters: none.
WITH latest AS (
    SELECT max(batch_id) AS batch_id
    FROM ingest_batches
    WHERE status = 'loaded'
    GROUP BY file_path
)
SELECT q.batch_id, q.file_name, q.line, q.column_name, q.rule, q.value, q.detail
FROM quarantine q JOIN latest USING (batch_id)
ORDER BY q.batch_id, q.line
