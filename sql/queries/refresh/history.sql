-- Purpose: every build of the nightly refresh for the history page, each published build with
-- what changed since the previous published one (patients, events, corrected and quarantined
-- rows from audit and quarantine, movement of the primary hazard ratio).
-- Grain: one row per refresh run that built or tried to build (skipped runs left out unless
-- they recorded files that need attention in refresh_warnings).
-- Parameters: none.
WITH published AS (
    SELECT
        run_id,
        max_batch_id,
        lag(max_batch_id) OVER w AS prev_batch_id,
        lag(n_patients) OVER w AS prev_patients,
        lag(events) OVER w AS prev_events,
        lag(hr) OVER w AS prev_hr
    FROM refresh_builds
    WHERE status = 'published'
    WINDOW w AS (ORDER BY run_id)
)
SELECT
    b.run_id, b.stamp, b.as_of, b.started_at, b.finished_at, b.status, b.failed_step, b.message,
    b.n_patients, b.n_cohort, b.events, b.hr, b.ci_lower, b.ci_upper,
    b.cif_1y_treated, b.cif_1y_untreated, b.cif_5y_treated, b.cif_5y_untreated,
    p.prev_patients, p.prev_events, p.prev_hr, p.prev_batch_id IS NOT NULL AS has_previous,
    (SELECT count(DISTINCT a.table_name || '/' || a.row_key) FROM audit a
     WHERE a.batch_id > coalesce(p.prev_batch_id, 0) AND a.batch_id <= p.max_batch_id)
        AS corrected_rows,
    (SELECT count(*) FROM quarantine q
     WHERE q.batch_id > coalesce(p.prev_batch_id, 0) AND q.batch_id <= p.max_batch_id)
        AS quarantined_rows
FROM refresh_builds b
LEFT JOIN published p USING (run_id)
WHERE b.status <> 'skipped' OR b.run_id IN (SELECT run_id FROM refresh_warnings)
ORDER BY b.run_id
