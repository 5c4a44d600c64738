-- Purpose: a natural key stored more than once (the core tables keep no primary-key
-- index, see migration 0004; ingest never stores a key twice, so any row here
-- means the database was written around it).
-- Grain: one row per repeated natural key of any core table.
-- Parameters: none.
SELECT 'patients' AS table_name, patient_id, 'duplicate_natural_key' AS rule,
       format('patient_id stored {} times', count(*)) AS detail
FROM patients GROUP BY patient_id HAVING count(*) > 1
UNION ALL
SELECT 'index_fractures', patient_id, 'duplicate_natural_key',
       format('index fracture at {} stored {} times', level, count(*))
FROM index_fractures GROUP BY patient_id, level HAVING count(*) > 1
UNION ALL
SELECT 'procedures', patient_id, 'duplicate_natural_key',
       format('procedure at {} on {} stored {} times', level, performed_on, count(*))
FROM procedures GROUP BY patient_id, level, performed_on HAVING count(*) > 1
UNION ALL
SELECT 'assessments', patient_id, 'duplicate_natural_key',
       format('{} assessment on {} stored {} times', instrument, assessed_on, count(*))
FROM assessments GROUP BY patient_id, instrument, assessed_on HAVING count(*) > 1
UNION ALL
SELECT 'fractures', patient_id, 'duplicate_natural_key',
       format('fracture at {} on {} stored {} times', level, detected_on, count(*))
FROM fractures GROUP BY patient_id, level, detected_on HAVING count(*) > 1
UNION ALL
SELECT 'follow_up', patient_id, 'duplicate_natural_key',
       format('contact on {} stored {} times', contact_on, count(*))
FROM follow_up GROUP BY patient_id, contact_on HAVING count(*) > 1
