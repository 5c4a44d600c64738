-- Purpose: the pain (VAS) and disability (ODI) assessment picked for each patient,
-- instrument and visit, as registry/models/pro.py pick_visits picks it, in DuckDB so that
-- neither the assessments nor the picked visits sit in Python memory (DuckDB spills under
-- memory_limit). registry/analysis/pro.py picked_in_db materialises it as the TEMP table
-- pro_picked, which the other pro_*.sql queries read. Baseline: the last assessment on or
-- before the anchor day (anchor + $untreated_baseline_days for the untreated); visit k: the
-- one closest to day $aim_k within days $first_k-$last_k after the anchor, the earlier one
-- on ties.
-- Grain: one row per patient, instrument and visit with an assessment (unordered); visit
-- codes 0 baseline, 1-3 the windows in registry.models.pro.WINDOWS.
-- Parameters: $untreated_baseline_days, $first_1, $last_1, $aim_1, $first_2, $last_2,
-- $aim_2, $first_3, $last_3, $aim_3; and a table pro_anchors (patient: the row index in the
-- cohort's patients, patient_id, arm, anchor_on) that the caller registers.
WITH days AS (
    SELECT
        n.patient,
        n.arm,
        a.instrument,
        a.assessed_on - n.anchor_on AS day,
        a.score::DOUBLE AS score,
        CASE WHEN n.arm = 'untreated' THEN $untreated_baseline_days ELSE 0 END AS limit_day
    FROM assessments AS a
    JOIN pro_anchors AS n ON a.patient_id = n.patient_id
),
coded AS (
    SELECT
        *,
        CASE
            WHEN day <= limit_day THEN 0
            WHEN day BETWEEN $first_1 AND $last_1 THEN 1
            WHEN day BETWEEN $first_2 AND $last_2 THEN 2
            WHEN day BETWEEN $first_3 AND $last_3 THEN 3
        END AS visit_code,
        CASE
            WHEN day <= limit_day THEN limit_day - day
            WHEN day BETWEEN $first_1 AND $last_1 THEN abs(day - $aim_1) * 2048 + day
            WHEN day BETWEEN $first_2 AND $last_2 THEN abs(day - $aim_2) * 2048 + day
            WHEN day BETWEEN $first_3 AND $last_3 THEN abs(day - $aim_3) * 2048 + day
        END AS preference
    FROM days
)
SELECT patient, arm, instrument, visit_code, day, score
FROM coded
WHERE visit_code IS NOT NULL
QUALIFY row_number() OVER (
    PARTITION BY patient, instrument, visit_code ORDER BY preference
) = 1
