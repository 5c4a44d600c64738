-- Purpose: one chunk of the staged file (see stage_csv.sql), for row validation.
-- Grain: one row per staged line with ordinal in [$first, $stop); callers take each
-- row's line from its ordinal, so no ORDER BY (sorting cost 3 s of 5 at 22.8 M rows).
-- Parameters: $first, $stop (ordinals, 0-based, stop excluded).
SELECT rowid AS __ordinal, *
FROM ingest_raw
WHERE rowid >= $first AND rowid < $stop
