"""Survival models, returning our own frozen dataclasses (see registry/analysis for the
orchestration). lifelines fits the unweighted Kaplan-Meier curves and the unadjusted
fixed-covariate Cox models, through lifelines_fits, the only module that imports it; the
in-house NumPy engine (km, cox, competing) fits the rest; statsmodels fits the propensity
model (iptw). Who fits what, and why (measured): README, "Who fits what, and why"."""
