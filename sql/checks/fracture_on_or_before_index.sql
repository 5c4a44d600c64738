-- Purpose: a new fracture dated on or before the patient's first index diagnosis
-- is not a new fracture (the cohort leaves it out and counts it).
-- Grain: one row per offending fractures row.
-- Parameters: none.
SELECT 'fractures' AS table_name, f.patient_id,
       'fracture_on_or_before_index' AS rule,
       format('new fracture at {} on {} is on or before the first index diagnosis {}',
              f.level, f.detected_on, d.first_diagnosed_on) AS detail
FROM fractures f JOIN patient_dates d USING (patient_id)
WHERE f.detected_on <= d.first_diagnosed_on
