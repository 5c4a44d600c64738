-- Purpose: every distinct patient id stored in the six core tables (what a rekey
-- must translate).
-- Grain: one row per distinct patient_id.
-- Parameters: none.
SELECT patient_id FROM patients
UNION SELECT patient_id FROM index_fractures
UNION SELECT patient_id FROM procedures
UNION SELECT patient_id FROM assessments
UNION SELECT patient_id FROM fractures
UNION SELECT patient_id FROM follow_up
