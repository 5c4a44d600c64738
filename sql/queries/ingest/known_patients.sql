-- Purpose: the patients known to the registry, for the unknown-patient and
-- date-before-birth row rules of ingest.
-- Grain: one row per patient.
-- Parameters: none.
SELECT patient_id, birth_year
FROM patients
