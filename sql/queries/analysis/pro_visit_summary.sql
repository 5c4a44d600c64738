-- Purpose: per instrument, arm and visit, the trajectory (n, mean, SD) and the box-plot
-- statistics of the picked scores (TEMP table pro_picked, see pro_pick.sql): quartiles and
-- 5th/95th centiles by linear interpolation (quantile_cont = Polars' "linear" = R's type 7),
-- SD with n - 1 (null for one score), as registry/models/pro.py trajectories and
-- registry/analysis/pro.py box_table compute them from the picked rows.
-- Grain: one row per instrument, arm and visit code with a score (unordered).
-- Parameters: none; reads pro_picked.
SELECT
    instrument, arm, visit_code,
    q[1] AS q1, q[2] AS median, q[3] AS q3, q[4] AS lowerfence, q[5] AS upperfence,
    mean, sd, n
FROM (
    SELECT
        instrument,
        arm,
        visit_code,
        quantile_cont(score, [0.25, 0.5, 0.75, 0.05, 0.95]) AS q,
        avg(score) AS mean,
        stddev_samp(score) AS sd,
        count(*) AS n
    FROM pro_picked
    GROUP BY instrument, arm, visit_code
) AS visits
