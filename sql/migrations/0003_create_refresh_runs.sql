-- Purpose: the log of the nightly refresh: one row per step of each run, and one row per
-- run that built (or tried to build) a report, with its fingerprint and headline numbers.
-- Grain: refresh_runs one row per (run_id, step); refresh_builds one row per run_id.
-- Parameters: none. A run killed mid-step leaves status 'running'; the next run marks it
-- 'interrupted'.

CREATE SEQUENCE refresh_run_seq START 1;

CREATE TABLE refresh_runs (
    run_id BIGINT NOT NULL,
    step VARCHAR NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    status VARCHAR NOT NULL CHECK (status IN ('running', 'ok', 'skipped', 'failed', 'interrupted')),
    rows BIGINT,
    message VARCHAR,
    PRIMARY KEY (run_id, step)
);

CREATE TABLE refresh_builds (
    run_id BIGINT PRIMARY KEY,
    stamp VARCHAR NOT NULL,
    as_of DATE NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    status VARCHAR NOT NULL CHECK (
        status IN ('running', 'published', 'failed', 'interrupted', 'skipped')),
    fingerprint VARCHAR,
    failed_step VARCHAR,
    message VARCHAR,
    max_batch_id BIGINT,
    n_patients BIGINT,
    n_cohort BIGINT,
    events BIGINT,
    hr DOUBLE,
    ci_lower DOUBLE,
    ci_upper DOUBLE,
    cif_1y_treated DOUBLE,
    cif_1y_untreated DOUBLE,
    cif_5y_treated DOUBLE,
    cif_5y_untreated DOUBLE
);
