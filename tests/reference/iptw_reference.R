# Reference values for registry/models/iptw.py and the IPTW Cox model.
# Data: tests/data/iptw_landmark.csv, the adjacent-outcome landmark frame of the
# demo cohort (1,700 synthetic patients, seed 20260101), complete covariates only,
# pseudonymous ids replaced by row numbers.
# The frames are written by tests/reference/make_demo_frames.py (rerun it, then this).
# Run from the repository root: Rscript tests/reference/iptw_reference.R
library(survival)
d <- read.csv("tests/data/iptw_landmark.csv")
out <- "tests/reference/iptw"
fmt <- function(x) sprintf("%.17g", x)

# Propensity model: glm(treated ~ age + male + bmd_t_score + glucocorticoids +
#   prior_vertebral_fractures + n_index_levels, binomial) -- the study's covariates
ps_fit <- glm(treated ~ age + male + bmd_t_score + glucocorticoids + prior_vertebral_fractures +
                n_index_levels, family = binomial, data = d, control = glm.control(epsilon = 1e-14, maxit = 100))
write.csv(data.frame(term = names(coef(ps_fit)), coef = fmt(coef(ps_fit))),
          file.path(out, "propensity_coef.csv"), row.names = FALSE)

# Stabilised weights: P(A = a) / P(A = a | X)
ps <- fitted(ps_fit)
share <- mean(d$treated)
w <- ifelse(d$treated == 1, share / ps, (1 - share) / (1 - ps))
write.csv(data.frame(id = d$id, weight = fmt(w)), file.path(out, "weights.csv"), row.names = FALSE)

# Weighted Cox with robust variance:
# coxph(Surv(duration_days, event == 1) ~ treated, data = d, weights = w, robust = TRUE)
fit <- coxph(Surv(duration_days, event == 1) ~ treated, data = d, weights = w, robust = TRUE,
             ties = "efron", control = coxph.control(eps = 1e-12, iter.max = 50))
write.csv(data.frame(coef = fmt(coef(fit)), se_robust = fmt(sqrt(diag(fit$var))),
                     se_model = fmt(sqrt(diag(fit$naive.var)))),
          file.path(out, "weighted_cox.csv"), row.names = FALSE)

# Standardised mean differences (pooled SD of the arms; weighted means and variances
# with sum(w) denominators) before and after weighting.
smd <- function(x, a, w) {
  m1 <- weighted.mean(x[a == 1], w[a == 1]); m0 <- weighted.mean(x[a == 0], w[a == 0])
  v1 <- sum(w[a == 1] * (x[a == 1] - m1)^2) / sum(w[a == 1])
  v0 <- sum(w[a == 0] * (x[a == 0] - m0)^2) / sum(w[a == 0])
  (m1 - m0) / sqrt((v1 + v0) / 2)
}
covs <- c("age", "male", "bmd_t_score", "glucocorticoids", "prior_vertebral_fractures",
          "n_index_levels")
write.csv(data.frame(covariate = covs,
                     smd_before = fmt(sapply(covs, function(v) smd(d[[v]], d$treated, rep(1, nrow(d))))),
                     smd_after = fmt(sapply(covs, function(v) smd(d[[v]], d$treated, w)))),
          file.path(out, "balance.csv"), row.names = FALSE)
