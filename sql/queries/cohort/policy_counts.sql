-- Purpose: rows the cohort stage sets aside under its documented data policy
-- that are only visible in the raw tables (contacts and assessments after
-- death).
-- Grain: one row per policy rule.
-- Parameters: none.
SELECT 'contact_after_death' AS rule, count(*) AS rows, count(DISTINCT patient_id) AS patients
FROM follow_up f JOIN patient_dates d USING (patient_id)
WHERE f.contact_on > d.death_on
UNION ALL
SELECT 'assessment_after_death', count(*), count(DISTINCT patient_id)
FROM assessments a JOIN patient_dates d USING (patient_id)
WHERE a.assessed_on > d.death_on
