-- Purpose: the recorded check value of the pseudonym key (never the key) and when
-- it was recorded; no row for a registry that was never ingested with a key.
-- Grain: at most one row.
-- Parameters: none.
SELECT value AS key_check, recorded_at
FROM registry_settings
WHERE name = 'pseudonym_key_check'
