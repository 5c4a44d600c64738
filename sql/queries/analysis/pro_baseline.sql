-- Purpose: each patient's baseline pain and disability scores for Table 1, from the TEMP
-- table pro_picked (see pro_pick.sql): compact (a row index and two doubles) so that ten
-- million patients' baselines cost some 200 MB in Python, not patient_id strings.
-- Grain: one row per patient with a baseline score, ordered by patient (the row index in
-- the cohort's patients); a missing instrument is null.
-- Parameters: none; reads pro_picked.
SELECT
    patient,
    max(score) FILTER (WHERE instrument = 'VAS') AS baseline_vas,
    max(score) FILTER (WHERE instrument = 'ODI') AS baseline_odi
FROM pro_picked
WHERE visit_code = 0
GROUP BY patient
ORDER BY patient
