-- Purpose: a patient with no index fracture at all (no time zero can be set).
-- Grain: one row per offending patient.
-- Parameters: none.
SELECT 'patients' AS table_name, d.patient_id, 'patient_without_index_fracture' AS rule,
       'the patient has no row in index_fractures' AS detail
FROM patient_dates d
WHERE d.first_diagnosed_on IS NULL
