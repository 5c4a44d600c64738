-- Purpose: a follow-up contact dated after the patient's death.
-- Grain: one row per offending follow_up row.
-- Parameters: none.
SELECT 'follow_up' AS table_name, f.patient_id, 'contact_after_death' AS rule,
       format('contact ({}) on {} is after death on {}', f.status, f.contact_on, d.death_on)
           AS detail
FROM follow_up f JOIN patient_dates d USING (patient_id)
WHERE f.contact_on > d.death_on
