"""Multiple imputation of missing covariates by chained equations, and Rubin's rules.

Modules: chained and auxiliary (the imputation engine), completed (analysis frames with one
completed dataset's covariates), pool (Rubin's rules, as R's mice::pool; risks pooled on the
complementary log-log scale).
"""
