"""Calibrated constants of the synthetic cohort (fitted once on 4,000,000 patients)."""

from __future__ import annotations

import datetime

import numpy as np

from registry.levels import LEVELS

SCENARIOS = ("default", "early-adjacent", "tv-confounding")
TABLES = ("patients", "index_fractures", "procedures", "assessments", "fractures", "follow_up")
HORIZON_DAYS = 1826  # follow-up stops at five years for everyone
CONTACT_DAYS = (30, 91, 182, 365, 730, 1096, 1461, 1826)
ENROL_FIRST = datetime.date(2019, 1, 1)
ENROL_LAST = datetime.date(2024, 12, 31)
NEVER = 1e12  # "no treatment" switch time, finite to keep the arithmetic warning-free

SITE_P = (0.22, 0.18, 0.15, 0.13, 0.11, 0.09, 0.07, 0.05)
N_LEVELS_P = (0.65, 0.22, 0.09, 0.04)
PRIOR_P = (0.55, 0.225, 0.11, 0.06, 0.035, 0.02)  # 45% with >= 1 prior vertebral fracture
LEVEL_WEIGHT = {
    "L1": 0.22,
    "T12": 0.19,
    "L2": 0.10,
    "T11": 0.08,
    "L3": 0.07,
    "T8": 0.06,
    "T7": 0.05,
    "T10": 0.05,
    "L4": 0.05,
    "T9": 0.04,
    "T6": 0.03,
    "T5": 0.02,
    "L5": 0.02,
    "T4": 0.02,
}
LEVEL_P = np.array([LEVEL_WEIGHT.get(name, 0.0) for name in LEVELS]) / sum(LEVEL_WEIGHT.values())
NEW_LEVEL_FLOOR = 0.005  # new fractures may land anywhere, rarely outside T4-L5
SANDWICH_SHARE = 0.15  # of two-level patients: exactly one level between the two
ETIOLOGY = ("osteoporotic", "malignant", "traumatic")
ETIOLOGY_P = (0.97, 0.015, 0.015)
GENANT_P = (0.30, 0.45, 0.25)
LEAKAGE = ("none", "disc", "venous", "paravertebral", "other")
LEAKAGE_P = (0.70, 0.12, 0.10, 0.06, 0.02)
DETECTION = ("radiographic", "clinical")
DETECTION_P = (0.55, 0.45)
MISSING_COVARIATE = 0.02

# Covariates enter every linear predictor centred on their population means.
CENTRE = {"age": 73.0, "bmd": -2.8, "n_levels": 1.52, "prior": 0.865, "steroids": 0.10}
TREAT_COEF = {"const": 0.007, "age": -0.04, "bmd": -0.50, "n_levels": 0.40, "pain": 0.60}
FRACTURE_COEF = {"age": 0.0815, "bmd": -0.30, "n_levels": 0.20, "steroids": 0.40, "prior": 0.12}
DEATH_COEF = {"age": 0.075, "bmd": -0.15, "n_levels": 0.10, "steroids": 0.30, "prior": 0.05}
MALE_DEATH_HR = 1.5
# Weibull cumulative hazard H(t) = rate * exp(lp) * t**shape, t in days from t0.
HAZARD = {
    "adjacent": {"shape": 0.466, "rate": 4.91e-3},
    "remote": {"shape": 0.804, "rate": 4.84e-4},
    "same": {"shape": 0.5, "rate": 6.36e-4},
    "death": {"shape": 1.0, "rate": 1.439e-4},
}
DEATH_HR_TREATED = 0.971  # from the day of the procedure
EARLY_ADJACENT_SHAPE = {"treated": 0.45, "untreated": 0.55}
LOSS_PER_YEAR = 0.035
WITHDRAW_PER_YEAR = 0.01

# Patient-reported outcomes, (mean, sd) per visit: baseline, one month, six and twelve months.
PRO_SCALE = {"VAS": 10.0, "ODI": 100.0}
PRO_DECIMALS = {"VAS": 1, "ODI": 0}
PRO_MOMENTS = {
    ("VAS", True): ((7.9, 1.5), (1.3, 1.8), (1.5, 1.9), (1.5, 1.9)),
    ("VAS", False): ((7.2, 1.6), (4.5, 2.2), (3.5, 2.2), (3.5, 2.2)),
    ("ODI", True): ((69.3, 13.5), (18.8, 6.9), (20.0, 8.0), (20.0, 8.0)),
    ("ODI", False): ((62.0, 14.0), (45.0, 15.0), (35.0, 15.0), (35.0, 15.0)),
}

# tv-confounding: a latent severity S ~ N(0, 1) drives VAS and ODI at every visit before
# treatment, the treatment hazard on days 15-365 (through the latest recorded scores), and the
# adjacent-fracture hazard.
TV_GRACE_DAYS = 56  # the target trial's grace period: treat within 2-8 weeks
# Inclusive day ranges of the visits of the untreated schedule: ~3 and ~14 days, ~6 weeks, ~6
# and ~12 months. A treated patient keeps those up to the procedure day, then the treated
# course's (one, six and twelve months after the procedure).
TV_VISIT_DAYS = ((2, 4), (12, 14), (35, 49), (168, 196), (351, 379))
TV_VISIT_NAMES = ("day3", "day14", "week6", "month6", "month12")
TV_VISIT_PRO = {  # (mean at each visit, slope on S, noise SD); clipped to the scale
    "VAS": ((6.5, 5.5, 4.5, 3.5, 3.5), 1.5, 1.0),
    "ODI": ((60.0, 52.0, 45.0, 35.0, 35.0), 15.0, 10.0),
}
TV_TREAT_RATE = 0.012  # treatment hazard per day on days 15-56 at the reference scores
# Log hazard ratios of treatment: per point of the latest VAS and ODI recorded, and covariates.
TV_TREAT_COEF = {"vas": 0.45, "odi": 0.02, "age": -0.03, "bmd": -0.40, "n_levels": 0.30}
TV_TREAT_REF = {"vas": 5.5, "odi": 52.0}
TV_LATE_FACTOR = 0.1  # the hazard after the grace period, relative to within it
TV_LATE_LAST_DAY = 365  # nobody is treated after this day
TV_SEVERITY_LOG_HR = 0.5  # adjacent fracture log hazard ratio per SD of severity
TV_DEATH_HR_TREATED = 1.0  # treatment leaves death alone, so HR 1.0 means no effect at all
TV_TRUTH_PATIENTS = 200_000  # the counterfactual risks use an internal draw at least this big
TV_TRUTH_YEARS = (1, 2, 5)

Arrays = dict[str, np.ndarray]

# Missing covariates (--missing, registry/synth/missing.py): log odds ratios of being missing.
# mar: a DXA in the pre-procedure work-up or after a new fracture; at a 30 % rate and true
# HR 0.6 these leave the complete-case time-varying adjusted HR at ~0.42 (6 seeds x 20,000
# patients: 0.385-0.47), as the issue saw; 0.38 (geometric mean of 20 seeds) at 2,000 patients,
# where the full-data HR is 0.575. mnar: per T-score point above the centre (lower
# bone density, more often missing) and for glucocorticoid users (less often missing).
MISSING_MAR_COEF = {"treated": -2.0, "new_fracture": -1.75}
MISSING_MNAR_COEF = {"bmd": -1.0, "steroids": -1.5}
