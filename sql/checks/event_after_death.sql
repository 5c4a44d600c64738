-- Purpose: a new fracture or a procedure dated after the patient's death.
-- Grain: one row per offending fractures or procedures row.
-- Parameters: none.
SELECT 'fractures' AS table_name, f.patient_id, 'event_after_death' AS rule,
       format('fracture at {} on {} is after death on {}', f.level, f.detected_on, d.death_on)
           AS detail
FROM fractures f JOIN patient_dates d USING (patient_id)
WHERE f.detected_on > d.death_on
UNION ALL
SELECT 'procedures', p.patient_id, 'event_after_death',
       format('{} at {} on {} is after death on {}', p.procedure, p.level, p.performed_on,
              d.death_on)
FROM procedures p JOIN patient_dates d USING (patient_id)
WHERE p.performed_on > d.death_on
