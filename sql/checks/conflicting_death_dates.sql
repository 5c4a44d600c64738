-- Purpose: a patient recorded as dead on more than one date.
-- Grain: one row per offending patient.
-- Parameters: none.
SELECT 'follow_up' AS table_name, d.patient_id, 'conflicting_death_dates' AS rule,
       format('{} different death dates, the first {}', d.n_death_dates, d.death_on) AS detail
FROM patient_dates d
WHERE d.n_death_dates > 1
