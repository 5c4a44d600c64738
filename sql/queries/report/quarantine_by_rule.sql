-- Purpose: quarantined lines by file, column and rule in the latest batch of every file,
-- for the report's data-quality section (counts only).
-- Grain: one row per (file, column, rule).
-- Parameters: none.
WITH latest AS (
    SELECT max(batch_id) AS batch_id FROM ingest_batches
    WHERE status = 'loaded' GROUP BY file_path
)
SELECT q.file_name, coalesce(q.column_name, '(line)') AS column_name, q.rule,
       count(*) AS n_rows
FROM quarantine q JOIN latest USING (batch_id)
GROUP BY ALL
ORDER BY n_rows DESC, q.file_name, q.rule
