-- Purpose: a procedure dated before the patient's first index diagnosis (the
-- cohort excludes such patients).
-- Grain: one row per offending procedures row.
-- Parameters: none.
SELECT 'procedures' AS table_name, p.patient_id, 'procedure_before_index' AS rule,
       format('{} at {} on {} is before the first index diagnosis {}',
              p.procedure, p.level, p.performed_on, d.first_diagnosed_on) AS detail
FROM procedures p JOIN patient_dates d USING (patient_id)
WHERE p.performed_on < d.first_diagnosed_on
