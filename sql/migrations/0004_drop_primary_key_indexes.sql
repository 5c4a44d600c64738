-- Purpose: drop the PRIMARY KEY indexes of the six core tables, keeping every
-- column, NOT NULL and CHECK. DuckDB keeps a primary key as an ART index: loading
-- the 7.6 million assessments of a 1,000,000-patient registry took 15.6 s with it
-- and 1.8 s without, and the indexes made the file about 6 times larger. The
-- natural key stays the grain of each table: ingest quarantines every copy of a
-- key that repeats with other values and upserts by key, and the check
-- sql/checks/duplicate_natural_key.sql reports any key stored twice.
-- Grain: one row per natural key of each contract file (unchanged).
-- Parameters: none.

CREATE TABLE patients__new (
    patient_id VARCHAR NOT NULL,
    site_id VARCHAR,
    sex VARCHAR NOT NULL CHECK (sex IN ('F', 'M')),
    birth_year INTEGER NOT NULL CHECK (birth_year BETWEEN 1900 AND 2100),
    bmd_t_score DOUBLE CHECK (bmd_t_score BETWEEN -8 AND 4),
    glucocorticoids BOOLEAN,
    prior_vertebral_fractures INTEGER CHECK (prior_vertebral_fractures BETWEEN 0 AND 23)
);
INSERT INTO patients__new SELECT * FROM patients;
DROP TABLE patients;
ALTER TABLE patients__new RENAME TO patients;

CREATE TABLE index_fractures__new (
    patient_id VARCHAR NOT NULL,
    level VARCHAR NOT NULL CHECK (level IN (
        'C1','C2','C3','C4','C5','C6','C7',
        'T1','T2','T3','T4','T5','T6','T7','T8','T9','T10','T11','T12',
        'L1','L2','L3','L4','L5')),
    diagnosed_on DATE NOT NULL,
    etiology VARCHAR NOT NULL CHECK (etiology IN ('osteoporotic', 'malignant', 'traumatic')),
    genant_grade INTEGER CHECK (genant_grade BETWEEN 1 AND 3)
);
INSERT INTO index_fractures__new SELECT * FROM index_fractures;
DROP TABLE index_fractures;
ALTER TABLE index_fractures__new RENAME TO index_fractures;

CREATE TABLE procedures__new (
    patient_id VARCHAR NOT NULL,
    level VARCHAR NOT NULL CHECK (level IN (
        'C1','C2','C3','C4','C5','C6','C7',
        'T1','T2','T3','T4','T5','T6','T7','T8','T9','T10','T11','T12',
        'L1','L2','L3','L4','L5')),
    performed_on DATE NOT NULL,
    procedure VARCHAR NOT NULL CHECK (procedure IN ('vertebroplasty', 'kyphoplasty')),
    cement_volume_ml DOUBLE CHECK (cement_volume_ml BETWEEN 0 AND 30),
    cement_leakage VARCHAR CHECK (
        cement_leakage IN ('none', 'disc', 'venous', 'paravertebral', 'other'))
);
INSERT INTO procedures__new SELECT * FROM procedures;
DROP TABLE procedures;
ALTER TABLE procedures__new RENAME TO procedures;

CREATE TABLE assessments__new (
    patient_id VARCHAR NOT NULL,
    assessed_on DATE NOT NULL,
    instrument VARCHAR NOT NULL CHECK (instrument IN ('VAS', 'ODI')),
    score DOUBLE NOT NULL CHECK (
        (instrument = 'VAS' AND score BETWEEN 0 AND 10)
        OR (instrument = 'ODI' AND score BETWEEN 0 AND 100))
);
INSERT INTO assessments__new SELECT * FROM assessments;
DROP TABLE assessments;
ALTER TABLE assessments__new RENAME TO assessments;

CREATE TABLE fractures__new (
    patient_id VARCHAR NOT NULL,
    level VARCHAR NOT NULL CHECK (level IN (
        'C1','C2','C3','C4','C5','C6','C7',
        'T1','T2','T3','T4','T5','T6','T7','T8','T9','T10','T11','T12',
        'L1','L2','L3','L4','L5')),
    detected_on DATE NOT NULL,
    detection VARCHAR CHECK (detection IN ('radiographic', 'clinical'))
);
INSERT INTO fractures__new SELECT * FROM fractures;
DROP TABLE fractures;
ALTER TABLE fractures__new RENAME TO fractures;

CREATE TABLE follow_up__new (
    patient_id VARCHAR NOT NULL,
    contact_on DATE NOT NULL,
    status VARCHAR NOT NULL CHECK (status IN ('alive', 'dead', 'withdrawn', 'lost'))
);
INSERT INTO follow_up__new SELECT * FROM follow_up;
DROP TABLE follow_up;
ALTER TABLE follow_up__new RENAME TO follow_up;
