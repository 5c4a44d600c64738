-- Purpose: the paired changes (1-month minus baseline score) of one instrument and arm, from
-- the TEMP table pro_picked (see pro_pick.sql): all the Wilcoxon signed-rank test needs.
-- Grain: one row per patient with both visits of that instrument (unordered).
-- Parameters: $instrument (VAS/ODI), $arm (treated/untreated); reads pro_picked.
SELECT f.score - b.score AS change
FROM pro_picked AS b
JOIN pro_picked AS f ON f.patient = b.patient AND f.instrument = b.instrument
WHERE b.visit_code = 0 AND f.visit_code = 1 AND b.instrument = $instrument AND b.arm = $arm
