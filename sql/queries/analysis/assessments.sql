-- Purpose: the pain (VAS) and disability (ODI) assessments for the
-- patient-reported-outcome summaries of the analysis stage.
-- Grain: one row per assessment (patient, instrument, date).
-- Parameters: none.
SELECT patient_id, assessed_on, instrument, score
FROM assessments
ORDER BY patient_id, instrument, assessed_on
