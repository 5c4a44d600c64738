# The target trial's point estimate in R, beside ours (benchmarks/target_trial_versus_r.py).
#
#   Rscript benchmarks/target_trial_versus_r.R DIR [REPEATS] [PERCENTILE]
#
# Reads DIR/clones.csv (patient, strategy, interval, start, stop, event: 0 censored,
# 1 outcome, 2 death), DIR/initiation.csv (patient, interval, initiated and the design
# columns), DIR/intervals.csv (interval, start, stop, in_grace) and DIR/terms.csv (model
# den/num, term): the rows our estimator is computed from. From them, on its own:
#   * the initiation models, fitted on the rows of the intervals in which somebody started
#     treatment (elsewhere the probability is 0): the denominator on every term and the
#     numerator on time only, both with glm(binomial) (fit_initiation, the call the test
#     references use);
#   * each clone row's probability of staying uncensored through its interval: 1 - p for
#     no_treat (p = 0 where the patient has no initiation row), p of the grace period's last
#     interval for treat (1 elsewhere); the unstabilised weight 1 / (product over the clone's
#     earlier rows), times the numerator's marginal probability of staying uncensored to the
#     row's start (no_treat: the product of (1 - p(interval)) before it; treat, after the
#     grace period: 1 - that product through the grace period) for the stabilised weight;
#     capped at PERCENTILE (quantile type 7; 100: the maximum, i.e. no cap);
#   * survfit(Surv(start, stop, state) ~ strategy, weights = weight, id = row) and
#     summary(times = c(365, 730, 1826), extend = FALSE) (weighted_aj, risks_at);
#   * coxph(Surv(start, stop, event == 1) ~ treat, weights = weight, ties = "efron"): the
#     cause-specific log hazard ratio (the point estimate only: robust = FALSE).
# Writes DIR/r_numbers.csv (name, value as %.17g) and DIR/r_seconds.csv (step, seconds, cpu:
# the elapsed and CPU time of each step in each of REPEATS runs; default 1). Our weights
# (DIR/ours_weights.csv, one per clone row in clones.csv's order) are read after the timed
# runs, only for weight_row_max_abs_diff: the largest |ours - R's| over the clone rows.

args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
repeats <- if (length(args) >= 2) as.integer(args[2]) else 1L
percentile <- if (length(args) >= 3) as.numeric(args[3]) else 100
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)))
source(file.path(here, "..", "tests", "reference", "target_trial_functions.R"))

days <- c(365, 730, 1826)  # round(c(1, 2, 5) * 365.25), the days the analysis reads a year on
years <- c(1, 2, 5)
fmt <- function(x) ifelse(is.na(x), "", sprintf("%.17g", x))
seconds <- data.frame(step = character(), seconds = numeric(), cpu = numeric())
timed <- function(step, expr) {
  started <- proc.time()
  value <- force(expr)
  used <- proc.time() - started
  seconds[nrow(seconds) + 1, ] <<- list(step, used[["elapsed"]],
                                        used[["user.self"]] + used[["sys.self"]])
  value
}

read_inputs <- function() {
  list(
    clones = read.csv(file.path(dir, "clones.csv"),
                      colClasses = c("integer", "character", "integer", "numeric", "numeric",
                                     "integer")),
    init = read.csv(file.path(dir, "initiation.csv")),
    grid = read.csv(file.path(dir, "intervals.csv")),
    terms = read.csv(file.path(dir, "terms.csv"), colClasses = "character")
  )
}

fit_models <- function(init, terms) {
  active <- ave(init$initiated, init$interval, FUN = max) == 1
  data <- init[active, ]
  list(active = active, started = sort(unique(data$interval)),
       den = fit_initiation(reformulate(terms$term[terms$model == "den"], "initiated"), data),
       num = fit_initiation(reformulate(terms$term[terms$model == "num"], "initiated"), data))
}

censoring_weights <- function(clones, init, grid, models) {
  p_den <- ifelse(models$active, predict(models$den, newdata = init, type = "response"), 0)
  key <- function(patient, interval) patient * 100000 + interval
  p_row <- p_den[match(key(clones$patient, clones$interval), key(init$patient, init$interval))]
  treat <- clones$strategy == "treat"
  last_grace <- max(grid$interval[grid$in_grace == 1])
  stay <- ifelse(treat,
                 ifelse(clones$interval == last_grace & !is.na(p_row), p_row, 1),
                 1 - ifelse(is.na(p_row), 0, p_row))
  clone <- key(clones$patient, as.integer(treat))
  before <- ave(stay, clone, FUN = function(s) cumprod(c(1, s[-length(s)])))
  time_only <- data.frame(weeks = grid$start / 7, after_grace = as.numeric(grid$in_grace == 0))
  p_interval <- ifelse(grid$interval %in% models$started,
                       predict(models$num, newdata = time_only, type = "response"), 0)
  untreated <- c(1, cumprod(1 - p_interval))  # to each interval's start (interval k: k + 1)
  marginal <- ifelse(treat,
                     ifelse(clones$interval > last_grace, 1 - untreated[last_grace + 2], 1),
                     untreated[clones$interval + 1])
  w_raw <- marginal / before
  cap <- quantile(w_raw, percentile / 100, type = 7, names = FALSE)
  list(w = pmin(w_raw, cap), cap = cap)
}

by_clone <- function(clones) order(clones$patient, clones$strategy, clones$start)

estimate <- function(inputs) {
  clones <- clone_states(inputs$clones[by_clone(inputs$clones), ])
  models <- timed("glm", fit_models(inputs$init, inputs$terms))
  weights <- timed("weights", censoring_weights(clones, inputs$init, inputs$grid, models))
  clones$weight <- weights$w
  risks <- timed("survfit", risks_at(weighted_aj(clones), days, years))
  cox <- timed("coxph", coxph(Surv(start, stop, event == 1) ~ treat, data = clones,
                              weights = weight, ties = "efron", robust = FALSE,
                              control = coxph.control(eps = 1e-11, iter.max = 50)))
  list(clones = clones, models = models, cap = weights$cap, risks = risks, cox = cox)
}

inputs <- timed("read", read_inputs())
for (k in seq_len(repeats)) fit <- timed("estimate", estimate(inputs))

w <- fit$clones$weight
ours <- read.csv(file.path(dir, "ours_weights.csv"))$w[by_clone(inputs$clones)]
numbers <- c(
  setNames(coef(fit$models$den), paste0("coef_den:", names(coef(fit$models$den)))),
  setNames(coef(fit$models$num), paste0("coef_num:", names(coef(fit$models$num)))),
  "weight_mean:treat" = mean(w[fit$clones$strategy == "treat"]),
  "weight_mean:no_treat" = mean(w[fit$clones$strategy == "no_treat"]),
  weight_row_max_abs_diff = max(abs(ours - w)),
  weight_max = max(w),
  weight_cap = fit$cap,
  setNames(fit$risks$p_outcome, paste0("risk:", fit$risks$strategy, ":", fit$risks$year)),
  log_hr = unname(coef(fit$cox)))
write.csv(data.frame(name = names(numbers), value = fmt(numbers)),
          file.path(dir, "r_numbers.csv"), row.names = FALSE, quote = FALSE)
write.csv(seconds, file.path(dir, "r_seconds.csv"), row.names = FALSE, quote = FALSE)
