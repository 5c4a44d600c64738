# Golden values for registry/models/competing/ (tests/test_competing.py).
#
# Run from the repository root:  Rscript tests/reference/competing_reference.R
# Made with R 4.2, survival 3.5-3 and cmprsk 2.2-11. Writes:
#   tests/data/cr_mgus2.csv, cr_synthetic.csv, cr_tiny.csv   the input data sets
#   tests/reference/competing/<data>_*.csv                   the R results, numbers as %.17g
# Every data set has the columns time, status (0 censored, 1 event of interest, 2 competing),
# group, x1, x2.
#   mgus2:     survival::mgus2, time = etime (months), status = event (1 progression, 2 death),
#              group = sex, x1 = age, x2 = male indicator
#   synthetic: weekly visits in integer days (heavy ties between causes and censoring), two
#              arms, x1 continuous (2 decimals), x2 binary (set.seed(20260917))
#   tiny:      the 10-row hand example of tests/test_competing.py
# Outputs per data set <d>:
#   <d>_cuminc.csv      cuminc(time, status, group) curves: group, cause, time, est, var, in
#                       cuminc's own corner layout (0, then each event time twice, then max time)
#   <d>_pooled.csv      cuminc(time, status) without groups, same layout
#   <d>_timepoints.csv  timepoints(cuminc(time, status, group), times)
#   <d>_tests.csv       cuminc(time, status, group)$Tests (Gray's test, rho = 0)
#   <d>_crr.csv         crr(time, status, cbind(x1, x2), failcode = k, cencode = 0): coef, se,
#                       loglik, converged, n
#   <d>_crr_var.csv     the same fits' $var (sandwich) matrices, row-major

suppressPackageStartupMessages({
  library(survival)
  library(cmprsk)
})

out_dir <- "tests/reference/competing"
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))

write_ref <- function(frame, name) {
  frame[] <- lapply(frame, function(col) if (is.numeric(col)) fmt(col) else as.character(col))
  write.csv(frame, file.path(out_dir, name), row.names = FALSE, quote = FALSE)
}

write_data <- function(d, name) {
  d[] <- lapply(d, function(col) if (is.double(col)) fmt(col) else col)
  write.csv(d, file.path("tests/data", name), row.names = FALSE, quote = FALSE)
}

mgus2_data <- function() {
  d <- survival::mgus2
  etime <- ifelse(d$pstat == 0, d$futime, d$ptime)
  event <- ifelse(d$pstat == 0, 2 * d$death, 1)
  data.frame(
    time = etime, status = as.integer(event), group = as.character(d$sex),
    x1 = d$age, x2 = as.integer(d$sex == "M")
  )
}

synthetic_data <- function() {
  set.seed(20260917)
  n <- 3000
  arm <- sample(c("conservative", "vertebroplasty"), n, replace = TRUE)
  x1 <- round(rnorm(n), 2)
  x2 <- rbinom(n, 1, 0.4)
  lp <- 0.5 * x1 - 0.4 * x2 + 0.3 * (arm == "vertebroplasty")
  t1 <- rexp(n, 0.0008 * exp(lp))
  t2 <- rexp(n, 0.0006 * exp(0.3 * x1 + 0.2 * x2))
  cens <- pmin(runif(n, 100, 3000), 1825)
  t <- pmin(t1, t2, cens)
  status <- ifelse(t == cens, 0L, ifelse(t == t1, 1L, 2L))
  # Weekly visits: every time is a multiple of 7 days, so events of both causes and
  # censorings tie heavily (and all administrative censorings tie at 1827).
  time <- 7 * ceiling(t / 7)
  data.frame(time = time, status = status, group = arm, x1 = x1, x2 = x2)
}

tiny_data <- function() {
  data.frame(
    time = c(2, 2, 2, 3, 4, 4, 5, 5, 6, 7),
    status = c(1L, 2L, 0L, 1L, 0L, 1L, 2L, 2L, 1L, 0L),
    group = rep(c("a", "b"), 5),
    x1 = c(0.5, -1.2, 0.3, 1.1, -0.4, 0.9, -0.7, 0.2, 1.5, -0.1),
    x2 = c(1L, 0L, 0L, 1L, 1L, 0L, 1L, 0L, 0L, 1L)
  )
}

curves <- function(fit) {
  parts <- fit[names(fit) != "Tests"]
  do.call(rbind, lapply(names(parts), function(name) {
    label <- strsplit(name, " ")[[1]]
    p <- parts[[name]]
    data.frame(
      group = label[1], cause = label[2], time = p$time, est = p$est, var = p$var
    )
  }))
}

timepoint_frame <- function(fit, times) {
  tp <- timepoints(fit, times)
  grid <- expand.grid(row = rownames(tp$est), time = times, stringsAsFactors = FALSE)
  label <- do.call(rbind, strsplit(grid$row, " "))
  data.frame(
    group = label[, 1], cause = label[, 2], time = grid$time,
    est = tp$est[cbind(grid$row, as.character(grid$time))],
    var = tp$var[cbind(grid$row, as.character(grid$time))]
  )
}

crr_frames <- function(d, causes) {
  fits <- lapply(causes, function(k) {
    # crr(d$time, d$status, cbind(x1 = d$x1, x2 = d$x2), failcode = k, cencode = 0)
    crr(d$time, d$status, cbind(x1 = d$x1, x2 = d$x2), failcode = k, cencode = 0)
  })
  coef <- do.call(rbind, Map(function(fit, k) {
    data.frame(
      cause = k, name = names(fit$coef), coef = fit$coef, se = sqrt(diag(fit$var)),
      loglik = fit$loglik, converged = fit$converged, n = fit$n
    )
  }, fits, causes))
  var <- do.call(rbind, Map(function(fit, k) {
    data.frame(cause = k, row = rep(1:2, each = 2), col = rep(1:2, 2), var = c(t(fit$var)))
  }, fits, causes))
  list(coef = coef, var = var)
}

reference <- function(d, name, times, causes) {
  write_data(d, paste0("cr_", name, ".csv"))
  # cuminc(d$time, d$status, d$group)   (cencode = 0, rho = 0)
  fit <- cuminc(d$time, d$status, d$group)
  write_ref(curves(fit), paste0(name, "_cuminc.csv"))
  write_ref(timepoint_frame(fit, times), paste0(name, "_timepoints.csv"))
  tests <- fit$Tests
  write_ref(
    data.frame(cause = rownames(tests), stat = tests[, "stat"], pv = tests[, "pv"],
               df = tests[, "df"]),
    paste0(name, "_tests.csv")
  )
  # cuminc(d$time, d$status)   (one group)
  pooled <- cuminc(d$time, d$status)
  write_ref(curves(pooled), paste0(name, "_pooled.csv"))
  write_ref(timepoint_frame(pooled, times), paste0(name, "_pooled_timepoints.csv"))
  frames <- crr_frames(d, causes)
  write_ref(frames$coef, paste0(name, "_crr.csv"))
  write_ref(frames$var, paste0(name, "_crr_var.csv"))
  invisible(pooled)
}

mgus2 <- mgus2_data()
pooled <- reference(mgus2, "mgus2", c(60, 120, 240), causes = c(1, 2))
# The issue quotes 0.03410 / 0.06372 / 0.09981 for progression at 60 / 120 / 240 months.
print(round(timepoints(pooled, c(60, 120, 240))$est, 5))
reference(synthetic_data(), "synthetic", c(365, 730, 1825), causes = c(1, 2))
reference(tiny_data(), "tiny", c(1, 2, 4.5, 7, 8), causes = 1)
