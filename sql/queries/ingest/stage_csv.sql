-- Purpose: stage one contract CSV file in the temporary table ingest_raw, every
-- cell as text (columns c0, c1, ... in header order); rows whose shape is wrong
-- (too many or missing fields, bad quoting, invalid UTF-8) go to the
-- reject_errors table instead of failing the read. DuckDB reads the file itself:
-- nothing of it passes through Python objects here.
-- Grain: one row per well-formed data line, in file order (rowid = ordinal).
-- Parameters: $path (file path), $columns (c0.. -> 'VARCHAR', in header order).
CREATE OR REPLACE TEMP TABLE ingest_raw AS
SELECT *
FROM read_csv(
    $path,
    header = true,
    auto_detect = false,
    columns = $columns,
    delim = ',',
    quote = '"',
    escape = '"',
    store_rejects = true,
    strict_mode = true
)
