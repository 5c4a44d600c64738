-- Purpose: read one contract CSV file as text, every cell VARCHAR; rows whose
-- shape is wrong (too many or missing fields, bad quoting, invalid UTF-8) go
-- to the reject_errors table instead of failing the read.
-- Grain: one row per well-formed data line, in file order.
-- Parameters: $path (file path), $columns (header name -> 'VARCHAR', in order).
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
