-- Purpose: facts about the registry itself, one named value each. The first is
-- `pseudonym_key_check`: HMAC-SHA256 of a fixed label under the pseudonym key
-- (hex), recorded at the first keyed ingest and replaced by `registry rekey`, so
-- that an ingest with another key, or none, is refused before anything is
-- stored. The key itself is never stored.
-- Grain: one row per setting name.
-- Parameters: none.

CREATE TABLE registry_settings (
    name VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL,
    recorded_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
