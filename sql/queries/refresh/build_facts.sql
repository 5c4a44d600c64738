-- Purpose: facts recorded with each build so the history can say what changed between builds:
-- the last ingest batch it saw and the number of patients.
-- Grain: one row.
-- Parameters: none.
SELECT
    coalesce((SELECT max(batch_id) FROM ingest_batches), 0) AS max_batch_id,
    (SELECT count(*) FROM patients) AS n_patients
