-- Purpose: a contact with status 'alive' after the patient was recorded as
-- withdrawn or lost (follow-up is taken to end at the first withdrawal/loss).
-- Grain: one row per offending follow_up row.
-- Parameters: none.
WITH ended AS (
    SELECT patient_id, min(contact_on) AS ended_on
    FROM follow_up WHERE status IN ('withdrawn', 'lost')
    GROUP BY patient_id
)
SELECT 'follow_up' AS table_name, f.patient_id, 'contact_after_loss' AS rule,
       format('contact ({}) on {} is after withdrawal or loss on {}',
              f.status, f.contact_on, e.ended_on) AS detail
FROM follow_up f JOIN ended e USING (patient_id)
WHERE f.contact_on > e.ended_on AND f.status = 'alive'
