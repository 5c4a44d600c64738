-- Purpose: the six core registry tables of the import contract (DESIGN.md).
-- Grain: one row per natural key of each contract file.
-- Parameters: none. CHECK constraints are the last line of defence; ingest
-- quarantines bad rows before they reach these tables.

CREATE TABLE patients (
    patient_id VARCHAR PRIMARY KEY,
    site_id VARCHAR,
    sex VARCHAR NOT NULL CHECK (sex IN ('F', 'M')),
    birth_year INTEGER NOT NULL CHECK (birth_year BETWEEN 1900 AND 2100),
    bmd_t_score DOUBLE CHECK (bmd_t_score BETWEEN -8 AND 4),
    glucocorticoids BOOLEAN,
    prior_vertebral_fractures INTEGER CHECK (prior_vertebral_fractures BETWEEN 0 AND 23)
);

CREATE TABLE index_fractures (
    patient_id VARCHAR NOT NULL,
    level VARCHAR NOT NULL CHECK (level IN (
        'C1','C2','C3','C4','C5','C6','C7',
        'T1','T2','T3','T4','T5','T6','T7','T8','T9','T10','T11','T12',
        'L1','L2','L3','L4','L5')),
    diagnosed_on DATE NOT NULL,
    etiology VARCHAR NOT NULL CHECK (etiology IN ('osteoporotic', 'malignant', 'traumatic')),
    genant_grade INTEGER CHECK (genant_grade BETWEEN 1 AND 3),
    PRIMARY KEY (patient_id, level)
);

CREATE TABLE procedures (
    patient_id VARCHAR NOT NULL,
    level VARCHAR NOT NULL CHECK (level IN (
        'C1','C2','C3','C4','C5','C6','C7',
        'T1','T2','T3','T4','T5','T6','T7','T8','T9','T10','T11','T12',
        'L1','L2','L3','L4','L5')),
    performed_on DATE NOT NULL,
    procedure VARCHAR NOT NULL CHECK (procedure IN ('vertebroplasty', 'kyphoplasty')),
    cement_volume_ml DOUBLE CHECK (cement_volume_ml BETWEEN 0 AND 30),
    cement_leakage VARCHAR CHECK (
        cement_leakage IN ('none', 'disc', 'venous', 'paravertebral', 'other')),
    PRIMARY KEY (patient_id, level, performed_on)
);

CREATE TABLE assessments (
    patient_id VARCHAR NOT NULL,
    assessed_on DATE NOT NULL,
    instrument VARCHAR NOT NULL CHECK (instrument IN ('VAS', 'ODI')),
    score DOUBLE NOT NULL CHECK (
        (instrument = 'VAS' AND score BETWEEN 0 AND 10)
        OR (instrument = 'ODI' AND score BETWEEN 0 AND 100)),
    PRIMARY KEY (patient_id, instrument, assessed_on)
);

CREATE TABLE fractures (
    patient_id VARCHAR NOT NULL,
    level VARCHAR NOT NULL CHECK (level IN (
        'C1','C2','C3','C4','C5','C6','C7',
        'T1','T2','T3','T4','T5','T6','T7','T8','T9','T10','T11','T12',
        'L1','L2','L3','L4','L5')),
    detected_on DATE NOT NULL,
    detection VARCHAR CHECK (detection IN ('radiographic', 'clinical')),
    PRIMARY KEY (patient_id, level, detected_on)
);

CREATE TABLE follow_up (
    patient_id VARCHAR NOT NULL,
    contact_on DATE NOT NULL,
    status VARCHAR NOT NULL CHECK (status IN ('alive', 'dead', 'withdrawn', 'lost')),
    PRIMARY KEY (patient_id, contact_on)
);
