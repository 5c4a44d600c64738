-- Purpose: the paired before/after moments per instrument and arm: patients with both a
-- baseline (visit 0) and a 1-month (visit 1) score in the TEMP table pro_picked (see
-- pro_pick.sql); change = follow-up minus baseline; SDs with n - 1 (null for one pair), as
-- registry/models/pro.py before_after computes them from the picked rows.
-- Grain: one row per instrument and arm with at least one pair (unordered).
-- Parameters: none; reads pro_picked.
SELECT
    b.instrument,
    b.arm,
    count(*) AS n,
    avg(b.score) AS baseline_mean,
    stddev_samp(b.score) AS baseline_sd,
    avg(f.score) AS follow_up_mean,
    stddev_samp(f.score) AS follow_up_sd,
    avg(f.score - b.score) AS change_mean,
    stddev_samp(f.score - b.score) AS change_sd
FROM pro_picked AS b
JOIN pro_picked AS f ON f.patient = b.patient AND f.instrument = b.instrument
WHERE b.visit_code = 0 AND f.visit_code = 1
GROUP BY b.instrument, b.arm
