-- Purpose: the malformed lines of the latest read_csv scan (see read_csv.sql).
-- Grain: one row per rejected line of the file.
-- Parameters: none.
SELECT line::BIGINT AS line, min(error_type::VARCHAR) AS error_type,
       min(csv_line) AS csv_line, min(error_message) AS error_message
FROM reject_errors
WHERE scan_id = (SELECT max(scan_id) FROM reject_scans)
GROUP BY line
ORDER BY line
