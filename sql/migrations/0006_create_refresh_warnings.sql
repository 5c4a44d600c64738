-- Purpose: what a refresh run found that needs attention although the run went on: files of
-- the inbox that were refused, not recognised, or whose every row was quarantined. `registry
-- status` and the history page list them; the refresh exits 2 when a run recorded any.
-- Grain: one row per (run_id, file, kind).
-- Parameters: none. `file` is the file's path relative to the inbox; `reason` says why
-- (it may quote a column name, never a row of data).

CREATE TABLE refresh_warnings (
    run_id BIGINT NOT NULL,
    kind VARCHAR NOT NULL CHECK (kind IN ('refused', 'unrecognised', 'quarantined')),
    file VARCHAR NOT NULL,
    reason VARCHAR NOT NULL
);
