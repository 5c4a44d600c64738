# Golden values for registry/analysis/target_trial/ (tests/test_target_trial.py).
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
#   risks_<w>.csv summary(fit, times = 365.25 * c(1, 2, 5)): strategy, year, p_outcome (a
#                 year beyond a strategy's follow-up is left out: our risk there is None)

suppressPackageStartupMessages(library(survival))

dir <- "tests/reference/target_trial"
fmt <- function(x) sprintf("%.17g", x)

initiation <- read.csv(file.path(dir, "initiation.csv"))
fit <- glm(initiated ~ ., family = binomial, data = initiation,
           control = glm.control(epsilon = 1e-14, maxit = 100))
write.csv(data.frame(term = names(coef(fit)), estimate = fmt(coef(fit))),
          file.path(dir, "glm_coef.csv"), row.names = FALSE, quote = FALSE)

clones <- read.csv(file.path(dir, "clones.csv"))
clones$row <- seq_len(nrow(clones))
clones$state <- factor(clones$event, levels = 0:2, labels = c("censor", "outcome", "death"))

strategy_of <- function(strata) sub("strategy=", "", strata)

for (w in c("w", "sw")) {
  clones$weight <- clones[[w]]
  aj <- survfit(Surv(start, stop, state) ~ strategy, data = clones, weights = weight,
                id = row)
  strata <- rep(strategy_of(names(aj$strata)), aj$strata)
  write.csv(data.frame(strategy = strata, time = aj$time,
                       p_outcome = fmt(aj$pstate[, 2]), p_death = fmt(aj$pstate[, 3])),
            file.path(dir, paste0("aj_", w, ".csv")), row.names = FALSE, quote = FALSE)
  at <- summary(aj, times = 365.25 * c(1, 2, 5))
  write.csv(data.frame(strategy = strategy_of(as.character(at$strata)),
                       year = round(at$time / 365.25), p_outcome = fmt(at$pstate[, 2])),
            file.path(dir, paste0("risks_", w, ".csv")), row.names = FALSE, quote = FALSE)
}
