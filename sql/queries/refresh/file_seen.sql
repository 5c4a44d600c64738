-- Purpose: whether a file with this content (SHA-256) was already ingested or refused, so the
-- inbox treats a file as new by its content, not its name.
-- Grain: at most one row (the latest batch of that content).
-- Parameters: $sha (hex SHA-256 of the file).
SELECT batch_id, status, coalesce(message, '') AS message
FROM ingest_batches
WHERE sha256 = $sha
ORDER BY batch_id DESC
LIMIT 1
