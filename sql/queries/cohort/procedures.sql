-- Purpose: every procedure, for the treatment definition of the cohort stage.
-- Grain: one row per procedure (patient, level, date).
-- Parameters: none.
SELECT patient_id, level, performed_on, procedure
FROM procedures
ORDER BY patient_id, performed_on, level
