-- Purpose: the bookkeeping of ingest: one batch per file, its quarantined rows,
-- and the audit trail of every value an upsert changed.
-- Grain: ingest_batches one row per file ingested (or refused); quarantine one
-- row per rejected input line; audit one row per changed cell.
-- Parameters: none.

CREATE SEQUENCE ingest_batch_seq START 1;

CREATE TABLE ingest_batches (
    batch_id BIGINT PRIMARY KEY DEFAULT nextval('ingest_batch_seq'),
    file_path VARCHAR NOT NULL,
    file_name VARCHAR NOT NULL,
    table_name VARCHAR,
    sha256 VARCHAR,
    rows_read BIGINT NOT NULL DEFAULT 0,
    rows_inserted BIGINT NOT NULL DEFAULT 0,
    rows_updated BIGINT NOT NULL DEFAULT 0,
    rows_unchanged BIGINT NOT NULL DEFAULT 0,
    rows_quarantined BIGINT NOT NULL DEFAULT 0,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    status VARCHAR NOT NULL CHECK (status IN ('loaded', 'refused')),
    message VARCHAR
);

CREATE TABLE quarantine (
    batch_id BIGINT NOT NULL,
    file_name VARCHAR NOT NULL,
    line BIGINT NOT NULL,
    column_name VARCHAR,
    rule VARCHAR NOT NULL,
    value VARCHAR,
    detail VARCHAR NOT NULL,
    raw_row JSON NOT NULL
);

CREATE TABLE audit (
    batch_id BIGINT NOT NULL,
    table_name VARCHAR NOT NULL,
    row_key VARCHAR NOT NULL,
    column_name VARCHAR NOT NULL,
    old_value VARCHAR,
    new_value VARCHAR,
    changed_at TIMESTAMP NOT NULL
);
