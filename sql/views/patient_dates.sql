-- Purpose: the key dates of every patient, shared by the cross-table checks and
-- the cohort stage: first index diagnosis (any etiology), first death date, and
-- how many different death dates were recorded.
-- Grain: one row per patient in `patients`.
-- Parameters: none.
CREATE OR REPLACE VIEW patient_dates AS
WITH first_index AS (
    SELECT patient_id, min(diagnosed_on) AS first_diagnosed_on
    FROM index_fractures GROUP BY patient_id
), deaths AS (
    SELECT patient_id, min(contact_on) AS death_on, count(DISTINCT contact_on) AS n_death_dates
    FROM follow_up WHERE status = 'dead' GROUP BY patient_id
)
SELECT p.patient_id, i.first_diagnosed_on, d.death_on,
       coalesce(d.n_death_dates, 0) AS n_death_dates
FROM patients p
LEFT JOIN first_index i USING (patient_id)
LEFT JOIN deaths d USING (patient_id)
