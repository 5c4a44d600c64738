-- Purpose: one chunk of the staged file (see stage_csv.sql), for row validation.
-- Grain: one row per staged line with ordinal in [$first, $stop), in file order.
-- Parameters: $first, $stop (ordinals, 0-based, stop excluded).
SELECT rowid AS __ordinal, *
FROM ingest_raw
WHERE rowid >= $first AND rowid < $stop
ORDER BY rowid
