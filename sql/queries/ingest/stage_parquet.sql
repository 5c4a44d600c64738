-- Purpose: stage one contract Parquet file in the temporary table ingest_raw,
-- every cell cast to text, as for CSV files (see stage_csv.sql).
-- Grain: one row per Parquet row, in file order (rowid = ordinal).
-- Parameters: $path (file path).
CREATE OR REPLACE TEMP TABLE ingest_raw AS
SELECT CAST(COLUMNS(*) AS VARCHAR)
FROM read_parquet($path)
