# Golden values for registry/analysis/target_trial/ (tests/test_target_trial_reference.py).
#
# Run from the repository root, after tests/reference/target_trial_export.py:
#   Rscript tests/reference/target_trial_reference.R
# Made with R 4.2 and survival 3.5-3. Reads tests/reference/target_trial/initiation.csv and
# clones.csv (400 synthetic patients, seed 7, adjacent outcome, 56-day grace period), writes
# numbers as %.17g:
#   glm_coef.csv  glm(initiated ~ ., family = binomial, data = initiation): term, estimate
#   aj_<w>.csv    survfit(Surv(start, stop, state) ~ strategy, weights = <w>, id = row),
#                 multi-state (state 1 the outcome, 2 death): strategy, time, p_outcome,
#                 p_death at every time of the fit, for w = w (unstabilised), sw (stabilised)
# Each (start, stop] row is its own left-truncated record (id = row): the risk set at t holds
# the rows with start < t <= stop, each with its interval's weight, which is the estimator's
# definition. With id = clone_id survfit 3.5-3 gives other numbers wherever a clone's weight
# changes (no_treat, w, day 12: death probability 0.0015963 where every weight at risk is 1
# and the plain estimate, which id = row and unweighted id = clone_id both give, is 0.0026667).
#   risks_<w>.csv summary(fit, times = c(365, 730, 1826), extend = FALSE): strategy, year,
#                 p_outcome, at the days the analysis reads a year on (round(year * 365.25);
#                 follow-up stops at day 1826, so 365.25 * 5 would lie beyond it; a day
#                 beyond a strategy's follow-up is left out: our risk there is None)
#   cox_<w>.csv   coxph(Surv(start, stop, event == 1) ~ treat, data = clones, weights = <w>,
#                 ties = "efron", id = clone_id): the weighted cause-specific hazard ratio of
#                 the treat strategy (death censors): coef (log HR), hr, se_robust (clusters
#                 = clone_id, on because the weights are not integers), se_model, n, events
#   evalue.csv    E-values by VanderWeele & Ding (2017), base R formulas (the EValue package
#                 is not packaged for Debian): rr, lower, upper, e_point = E(rr) with
#                 E(x) = x + sqrt(x (x - 1)) for x >= 1 and E(1/x) below 1; e_ci = 1 when
#                 [lower, upper] holds 1, else E of the limit nearer 1
#   hr_to_rr.csv  hr, rr_common = (1 - 0.5^sqrt(hr)) / (1 - 0.5^sqrt(1/hr)) (outcome common:
#                 5-year risk > 15 %), rr_rare = hr
#   evalue_clones.csv the clones' 5-year risk ratio (treat / no_treat, risks_<w>.csv) and the
#                 weighted hazard ratio (cox_<w>.csv, Wald 95 % CI from se_robust, converted
#                 with the common-outcome formula when the no_treat 5-year risk > 15 %) with
#                 their E-values: weight, measure, estimate, lower, upper, common, e_point, e_ci

source("tests/reference/target_trial_functions.R")  # glm, survfit and summary calls

dir <- "tests/reference/target_trial"
fmt <- function(x) ifelse(is.na(x), "", sprintf("%.17g", x))
days <- c(365, 730, 1826)  # round(c(1, 2, 5) * 365.25)

initiation <- read.csv(file.path(dir, "initiation.csv"))
fit <- fit_initiation(initiated ~ ., initiation)
write.csv(data.frame(term = names(coef(fit)), estimate = fmt(coef(fit))),
          file.path(dir, "glm_coef.csv"), row.names = FALSE, quote = FALSE)

clones <- clone_states(read.csv(file.path(dir, "clones.csv")))

# E-values (VanderWeele & Ding 2017), written out rather than taken from a package.
e_value <- function(rr) { x <- ifelse(rr < 1, 1 / rr, rr); x + sqrt(x * (x - 1)) }
e_value_ci <- function(rr, lower, upper) {
  ifelse(lower <= 1 & upper >= 1, 1, ifelse(lower > 1, e_value(lower), e_value(upper)))
}
hr_common <- function(hr) (1 - 0.5^sqrt(hr)) / (1 - 0.5^sqrt(1 / hr))

clone_evalues <- list()
for (w in c("w", "sw")) {
  clones$weight <- clones[[w]]
  aj <- weighted_aj(clones)
  strata <- rep(strategy_of(names(aj$strata)), aj$strata)
  write.csv(data.frame(strategy = strata, time = aj$time,
                       p_outcome = fmt(aj$pstate[, 2]), p_death = fmt(aj$pstate[, 3])),
            file.path(dir, paste0("aj_", w, ".csv")), row.names = FALSE, quote = FALSE)
  risks <- risks_at(aj, days, c(1, 2, 5))
  write.csv(transform(risks, p_outcome = fmt(p_outcome)),
            file.path(dir, paste0("risks_", w, ".csv")), row.names = FALSE, quote = FALSE)

  cox <- coxph(Surv(start, stop, event == 1) ~ treat, data = clones, weights = weight,
               ties = "efron", id = clone_id, control = coxph.control(eps = 1e-11, iter.max = 50))
  write.csv(data.frame(coef = fmt(coef(cox)), hr = fmt(exp(coef(cox))),
                       se_robust = fmt(sqrt(diag(cox$var))),
                       se_model = fmt(sqrt(diag(cox$naive.var))), n = cox$n, events = cox$nevent),
            file.path(dir, paste0("cox_", w, ".csv")), row.names = FALSE, quote = FALSE)

  five <- risks[risks$year == 5, ]
  r_treat <- five$p_outcome[five$strategy == "treat"]
  r_none <- five$p_outcome[five$strategy == "no_treat"]
  common <- r_none > 0.15
  rr <- r_treat / r_none
  z <- qnorm(0.975)
  hr <- exp(coef(cox) + c(0, -z, z) * sqrt(diag(cox$var)))
  hr_rr <- if (common) hr_common(hr) else hr
  clone_evalues[[w]] <- data.frame(
    weight = w, measure = c("risk_ratio", "hazard_ratio"),
    estimate = c(rr, hr_rr[1]), lower = c(NA, hr_rr[2]), upper = c(NA, hr_rr[3]),
    common = common,
    e_point = c(e_value(rr), e_value(hr_rr[1])),
    e_ci = c(NA, e_value_ci(hr_rr[1], hr_rr[2], hr_rr[3])))
}
ev <- do.call(rbind, clone_evalues)
for (col in c("estimate", "lower", "upper", "e_point", "e_ci")) ev[[col]] <- fmt(ev[[col]])
write.csv(ev, file.path(dir, "evalue_clones.csv"), row.names = FALSE, quote = FALSE)

# A grid over both sides of 1: CIs wholly above, wholly below, holding 1, touching it.
grid <- data.frame(
  rr = c(1, 1.0001, 1.05, 1.3, 1.5, 2, 3.7, 10, 0.9999, 0.95, 0.8, 0.5, 0.27, 0.1, 1.2, 0.7, 1.8, 0.6),
  lower = c(0.8, 1.00005, 1.01, 1.1, 0.9, 1.5, 2.2, 4, 0.9, 0.9, 0.7, 0.3, 0.1, 0.05, 1, 0.5, 1.1, 0.4),
  upper = c(1.25, 1.0002, 1.1, 1.6, 2.5, 2.7, 6.1, 25, 1.1, 0.999, 0.9, 0.8, 0.6, 0.2, 1.4, 1, 2.9, 0.9))
grid$e_point <- e_value(grid$rr)
grid$e_ci <- e_value_ci(grid$rr, grid$lower, grid$upper)
for (col in names(grid)) grid[[col]] <- fmt(grid[[col]])
write.csv(grid, file.path(dir, "evalue.csv"), row.names = FALSE, quote = FALSE)

hr <- c(0.05, 0.2, 0.5, 0.6, 0.8, 0.95, 1, 1.05, 1.25, 1.5, 2, 4, 20)
write.csv(data.frame(hr = fmt(hr), rr_common = fmt(hr_common(hr)), rr_rare = fmt(hr)),
          file.path(dir, "hr_to_rr.csv"), row.names = FALSE, quote = FALSE)
