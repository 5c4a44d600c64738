-- Purpose: a procedure at a level with no index fracture of the same patient
-- (it is not the study treatment).
-- Grain: one row per offending procedures row.
-- Parameters: none.
SELECT 'procedures' AS table_name, p.patient_id, 'procedure_at_non_index_level' AS rule,
       format('{} at {} on {}: the patient has no index fracture at {}',
              p.procedure, p.level, p.performed_on, p.level) AS detail
FROM procedures p
WHERE NOT EXISTS (
    SELECT 1 FROM index_fractures i WHERE i.patient_id = p.patient_id AND i.level = p.level
)
