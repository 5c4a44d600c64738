-- Purpose: the staged rows (see stage_csv.sql) at the ordinals listed in the
-- registered frame wanted_ordinals: the copies of a key that repeats in a file,
-- whose raw text goes to quarantine.
-- Grain: one row per wanted staged line, in file order.
-- Parameters: none (reads the registered frame wanted_ordinals(ordinal)).
SELECT rowid AS __ordinal, *
FROM ingest_raw
WHERE rowid IN (SELECT ordinal FROM wanted_ordinals)
ORDER BY rowid
