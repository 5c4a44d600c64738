-- Purpose: per-patient facts the eligibility rules and follow-up definitions
-- need (DESIGN.md, "Time-to-event definitions"): covariates, the osteoporotic
-- t0, other etiologies, the first procedure, death, withdrawal/loss and the
-- last contact of any kind. Set work only; the rules themselves are applied in
-- registry/cohort.py.
-- Grain: one row per patient in `patients`.
-- Parameters: none.
WITH idx AS (
    SELECT patient_id,
           min(diagnosed_on) FILTER (WHERE etiology = 'osteoporotic') AS t0,
           count(*) FILTER (WHERE etiology <> 'osteoporotic') AS n_other_etiology,
           count(*) AS n_index_levels
    FROM index_fractures
    GROUP BY patient_id
), first_procedure AS (
    SELECT patient_id, min(performed_on) AS first_procedure_on
    FROM procedures
    GROUP BY patient_id
), deaths AS (
    SELECT patient_id, min(contact_on) AS death_on,
           count(DISTINCT contact_on) AS n_death_dates
    FROM follow_up
    WHERE status = 'dead'
    GROUP BY patient_id
), ended AS (
    SELECT patient_id, min(contact_on) AS ended_on,
           arg_min(status, contact_on) AS ended_status
    FROM follow_up
    WHERE status IN ('withdrawn', 'lost')
    GROUP BY patient_id
), contacts AS (
    SELECT patient_id, max(contact_on) AS last_contact_on
    FROM (
        SELECT patient_id, contact_on FROM follow_up
        UNION ALL SELECT patient_id, assessed_on FROM assessments
        UNION ALL SELECT patient_id, performed_on FROM procedures
        UNION ALL SELECT patient_id, detected_on FROM fractures
    )
    GROUP BY patient_id
)
SELECT p.patient_id, p.site_id, p.sex, p.birth_year, p.bmd_t_score, p.glucocorticoids,
       p.prior_vertebral_fractures,
       i.t0, coalesce(i.n_other_etiology, 0) AS n_other_etiology,
       coalesce(i.n_index_levels, 0) AS n_index_levels,
       f.first_procedure_on, d.death_on, coalesce(d.n_death_dates, 0) AS n_death_dates,
       e.ended_on, e.ended_status, c.last_contact_on
FROM patients p
LEFT JOIN idx i USING (patient_id)
LEFT JOIN first_procedure f USING (patient_id)
LEFT JOIN deaths d USING (patient_id)
LEFT JOIN ended e USING (patient_id)
LEFT JOIN contacts c USING (patient_id)
ORDER BY p.patient_id
