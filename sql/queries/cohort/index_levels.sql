-- Purpose: the index-fracture levels of every patient, with their diagnosis date
-- and etiology (registry/cohort.py keeps as reference levels the osteoporotic ones
-- diagnosed within 30 days of t0; treatment is at any index level).
-- Grain: one row per index fracture (patient, level).
-- Parameters: none.
SELECT patient_id, level, diagnosed_on, etiology
FROM index_fractures
ORDER BY patient_id, level
