# The R calls of the target-trial references, in one place: sourced by
# tests/reference/target_trial_reference.R (golden values for the tests) and by
# benchmarks/target_trial_versus_r.R (the point estimate side by side at 10,000 and 100,000
# patients), so both compare our estimator with the same glm and survfit calls.
#   fit_initiation(formula, data)  glm(binomial) of the treatment-initiation model
#   clone_states(clones)           clones (strategy, start, stop, event 0/1/2) with row (each
#                                  (start, stop] row its own left-truncated record), state
#                                  (censor, outcome, death) and treat (1 for the treat strategy)
#   weighted_aj(clones)            survfit(Surv(start, stop, state) ~ strategy, weights = weight,
#                                  id = row): weighted Aalen-Johansen, death competing
#   risks_at(aj, days, years)      summary(aj, times = days, extend = FALSE): strategy, year,
#                                  p_outcome (a day beyond a strategy's follow-up is left out)

suppressPackageStartupMessages(library(survival))

fit_initiation <- function(formula, data) {
  glm(formula, family = binomial, data = data,
      control = glm.control(epsilon = 1e-14, maxit = 100))
}

clone_states <- function(clones) {
  clones$row <- seq_len(nrow(clones))
  clones$state <- factor(clones$event, levels = 0:2, labels = c("censor", "outcome", "death"))
  clones$treat <- as.integer(clones$strategy == "treat")
  clones
}

weighted_aj <- function(clones) {
  survfit(Surv(start, stop, state) ~ strategy, data = clones, weights = weight, id = row)
}

strategy_of <- function(strata) sub("strategy=", "", strata)

risks_at <- function(aj, days, years) {
  at <- summary(aj, times = days, extend = FALSE)
  data.frame(strategy = strategy_of(as.character(at$strata)),
             year = years[match(at$time, days)],
             p_outcome = at$pstate[, 2])
}
