"""Cox proportional hazards in plain NumPy, validated against R's survival::coxph.

Efron ties, counting-process (start, stop] data, case weights, strata, the robust (sandwich)
variance with clusters and the cox.zph score test for proportional hazards. Rows are never
looped over in Python: the rows are sorted once by the index of the last tied-event group
(stratum, time) they are at risk for; every risk-set sum of [1, x] is then one sequential
sparse row-sum per bin followed by a reverse cumulative sum, minus the same for rows not yet
entered, Efron's correction is summed per group in closed form, and the second moments enter
the information only through one weighted Gram matrix x' diag(v) x (no p^2 columns per row).
tests/test_cox.py compares every quantity with R (tests/reference/cox_reference.R has the
R calls).

Modules: checks (inputs, CoxInputError), design (the sorted-once design; its covariate-free
Layout serves refits with other columns of the same rows, fit_layout), derivs (risk-set
sums, loglik, score, information), result (CoxFit), fit (fit_cox: Newton-Raphson), robust
(score residuals, sandwich variance), zph (ph_test), schoenfeld (scaled Schoenfeld residuals
and their binned, patient-free summary for plots).
"""

from registry.models.cox.design import Layout, build_layout
from registry.models.cox.fit import fit_cox, fit_layout
from registry.models.cox.inputs import CoxInputError
from registry.models.cox.result import CoxFit
from registry.models.cox.schoenfeld import scaled_schoenfeld, scaled_schoenfeld_smooth
from registry.models.cox.zph import ph_test

__all__ = [
    "CoxFit",
    "CoxInputError",
    "Layout",
    "build_layout",
    "fit_cox",
    "fit_layout",
    "ph_test",
    "scaled_schoenfeld",
    "scaled_schoenfeld_smooth",
]
