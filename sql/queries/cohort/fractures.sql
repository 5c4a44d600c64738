-- Purpose: every new fracture found during follow-up, for the outcome
-- definitions of the cohort stage.
-- Grain: one row per fracture (patient, level, detection date).
-- Parameters: none.
SELECT patient_id, level, detected_on, detection
FROM fractures
ORDER BY patient_id, detected_on, level
