-- Purpose: the instrument, arm and visit groups of the picked scores in the TEMP table
-- pro_picked (see pro_pick.sql); registry/analysis/pro.py summarise_in_db then fetches
-- each group's scores (pro_scores.sql) and summarises them in Polars: DuckDB's parallel
-- sums add in a different order from run to run, and the report must not change between
-- two runs on the same data.
-- Grain: one row per instrument, arm and visit code with a score, in that order.
-- Parameters: none; reads pro_picked.
SELECT DISTINCT instrument, arm, visit_code
FROM pro_picked
ORDER BY instrument, arm, visit_code
