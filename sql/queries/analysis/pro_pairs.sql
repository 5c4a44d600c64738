-- Purpose: the paired baseline (visit 0) and 1-month (visit 1) scores of one instrument and
-- arm, from the TEMP table pro_picked (see pro_pick.sql): what the before/after moments and
-- the Wilcoxon signed-rank test need, in patient order (the same sums in every run).
-- Grain: one row per patient with both visits of that instrument, ordered by patient.
-- Parameters: $instrument (VAS/ODI), $arm (treated/untreated); reads pro_picked.
SELECT b.score AS baseline, f.score AS follow_up
FROM pro_picked AS b
JOIN pro_picked AS f ON f.patient = b.patient AND f.instrument = b.instrument
WHERE b.visit_code = 0 AND f.visit_code = 1 AND b.instrument = $instrument AND b.arm = $arm
ORDER BY b.patient
