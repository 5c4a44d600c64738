-- Purpose: the picked scores of one instrument, arm and visit, from the TEMP table
-- pro_picked (see pro_pick.sql), in patient order so that their summaries are the same in
-- every run.
-- Grain: one row per patient with a score at that visit, ordered by patient.
-- Parameters: $instrument (VAS/ODI), $arm (treated/untreated), $visit_code (0 baseline,
-- 1-3 the windows); reads pro_picked.
SELECT score
FROM pro_picked
WHERE instrument = $instrument AND arm = $arm AND visit_code = $visit_code
ORDER BY patient
