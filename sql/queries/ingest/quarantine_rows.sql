-- Purpose: quarantined rows to show or send back: one batch ($batch), or the latest
-- loaded batch of every file ($batch NULL); only rows of one site's patients when
-- $site is given (the site of the row's patient in `patients`, or the row's own
-- site_id for rows of a patients file). raw_row holds pseudonymised ids only.
-- Grain: one row per quarantined input line.
-- Parameters: $batch (BIGINT or NULL), $site (VARCHAR or NULL).
WITH latest AS (
    SELECT max(batch_id) AS batch_id
    FROM ingest_batches
    WHERE status = 'loaded'
    GROUP BY file_path
),
chosen AS (
    SELECT q.*, b.table_name
    FROM quarantine q JOIN ingest_batches b USING (batch_id)
    WHERE CASE WHEN $batch::BIGINT IS NULL THEN q.batch_id IN (SELECT batch_id FROM latest)
               ELSE q.batch_id = $batch::BIGINT END
),
sited AS (
    SELECT c.*, CASE WHEN c.table_name = 'patients' THEN c.raw_row ->> 'site_id'
                     ELSE p.site_id END AS site_id
    FROM chosen c LEFT JOIN (
        SELECT patient_id, any_value(site_id) AS site_id FROM patients GROUP BY patient_id
    ) p ON p.patient_id = c.raw_row ->> 'patient_id'
)
SELECT batch_id, file_name, line, column_name, rule, value, detail,
       raw_row::VARCHAR AS raw_row, site_id
FROM sited
WHERE $site::VARCHAR IS NULL OR site_id = $site::VARCHAR
ORDER BY batch_id, line
