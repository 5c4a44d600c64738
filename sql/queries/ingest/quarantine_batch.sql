-- Purpose: the quarantined rows of one ingest batch.
-- Grain: one row per quarantined input line.
-- Parameters: $batch (ingest_batches.batch_id).
SELECT batch_id, file_name, line, column_name, rule, value, detail
FROM quarantine
WHERE batch_id = $batch
ORDER BY line
