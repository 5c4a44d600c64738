-- Purpose: whether a file was committed (a 'loaded' batch) after a given batch id:
-- after Ctrl-C, ingest names exactly the files whose transaction committed.
-- Grain: one row (the number of such batches).
-- Parameters: $before (batch id before the file started), $path (file path as given).
SELECT count(*) AS batches
FROM ingest_batches
WHERE batch_id > $before AND file_path = $path AND status = 'loaded'
