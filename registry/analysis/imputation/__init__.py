"""Multiple imputation of missing covariates by chained equations (issue 14).

auxiliary.py builds the fully observed predictors, chained.py the m completed datasets,
completed.py puts one of them into an analysis frame, pool.py holds Rubin's rules (as R's
mice::pool; risks pooled on the complementary log-log scale).
"""

from registry.analysis.imputation.auxiliary import auxiliary_frame
from registry.analysis.imputation.chained import Imputations, impute
from registry.analysis.imputation.completed import with_covariates

__all__ = ["Imputations", "auxiliary_frame", "impute", "with_covariates"]
