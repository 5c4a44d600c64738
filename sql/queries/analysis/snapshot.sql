-- Purpose: a fingerprint of the registry's contents for the provenance of a
-- results file: row count and an order-free hash (bit_xor of row hashes) per table.
-- Grain: one row per core table.
-- Parameters: none.
SELECT 'patients' AS table_name, count(*) AS n_rows, bit_xor(hash(t))::VARCHAR AS digest FROM patients t
UNION ALL SELECT 'index_fractures', count(*), bit_xor(hash(t))::VARCHAR FROM index_fractures t
UNION ALL SELECT 'procedures', count(*), bit_xor(hash(t))::VARCHAR FROM procedures t
UNION ALL SELECT 'assessments', count(*), bit_xor(hash(t))::VARCHAR FROM assessments t
UNION ALL SELECT 'fractures', count(*), bit_xor(hash(t))::VARCHAR FROM fractures t
UNION ALL SELECT 'follow_up', count(*), bit_xor(hash(t))::VARCHAR FROM follow_up t
ORDER BY table_name
