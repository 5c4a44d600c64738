-- Purpose: the picked PRO visits (the TEMP table pro_picked, see pro_pick.sql) with their
-- patient_id, as registry/models/pro.py pick_visits returns them: for tests and notebooks
-- that want the rows (the report's summaries never bring them into Python).
-- Grain: one row per patient, instrument and visit with an assessment, ordered by patient,
-- instrument and visit code (0 baseline, 1-3 the windows in registry.models.pro.WINDOWS).
-- Parameters: none; reads pro_picked and pro_anchors (patient, patient_id, arm, anchor_on).
SELECT n.patient_id, p.arm, p.instrument, p.visit_code, p.day, p.score
FROM pro_picked AS p
JOIN pro_anchors AS n ON n.patient = p.patient
ORDER BY n.patient_id, p.instrument, p.visit_code
