-- Purpose: the index-fracture levels of every patient (the reference levels of
-- the adjacency model are those of eligible patients).
-- Grain: one row per index fracture (patient, level).
-- Parameters: none.
SELECT patient_id, level, diagnosed_on, etiology
FROM index_fractures
ORDER BY patient_id, level
