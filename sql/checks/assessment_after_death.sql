-- Purpose: a VAS/ODI assessment dated after the patient's death.
-- Grain: one row per offending assessments row.
-- Parameters: none.
SELECT 'assessments' AS table_name, a.patient_id, 'assessment_after_death' AS rule,
       format('{} assessment on {} is after death on {}', a.instrument, a.assessed_on, d.death_on)
           AS detail
FROM assessments a JOIN patient_dates d USING (patient_id)
WHERE a.assessed_on > d.death_on
