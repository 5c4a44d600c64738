-- Purpose: the latest ingest batch of every file, for the report's data-quality section
-- (counts only; no rows of data).
-- Grain: one row per file path (its latest batch).
-- Parameters: none.
SELECT file_name, table_name, status, rows_read, rows_inserted, rows_updated, rows_unchanged,
       rows_quarantined, batch_id, message
FROM ingest_batches
QUALIFY row_number() OVER (PARTITION BY file_path ORDER BY batch_id DESC) = 1
ORDER BY batch_id
