-- Purpose: why the lines of the file being ingested were quarantined (the
-- temporary table ingest_quarantine, see registry/ingest/chunks.py).
-- Grain: one row per (column_name, rule).
-- Parameters: none.
SELECT column_name, rule, count(*) AS len
FROM ingest_quarantine
GROUP BY column_name, rule
