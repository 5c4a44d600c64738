# Golden values for registry/models/km.py (tests/test_km.py).
#
# Run from the repository root:  Rscript tests/reference/km_reference.R
# Made with R 4.2 and survival 3.5-3. Writes:
#   tests/data/km_lung.csv, tests/data/km_synthetic.csv   the two input data sets
#   tests/reference/km/<data>_*.csv                       the R results, numbers as %.17g
# Every data set has the columns time, status (1 = event), group, stratum, weight.
#   lung:      survival::lung, status 2 = event, group = sex, stratum = ph.ecog (NA kept in the
#              file; dropped for the stratified log-rank only), weight = 0.5 + (row %% 3) / 2
#   synthetic: integer days with heavy ties, two groups, three strata (set.seed(20260101))

suppressPackageStartupMessages(library(survival))

out_dir <- "tests/reference/km"
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))

write_ref <- function(frame, name) {
  frame[] <- lapply(frame, function(col) if (is.numeric(col)) fmt(col) else as.character(col))
  write.csv(frame, file.path(out_dir, name), row.names = FALSE, quote = FALSE)
}

write_data <- function(d, name) {
  write.csv(d, file.path("tests/data", name), row.names = FALSE, quote = FALSE, na = "")
}

lung_data <- function() {
  d <- survival::lung
  data.frame(
    time = d$time, status = as.integer(d$status == 2), group = d$sex,
    stratum = d$ph.ecog, weight = 0.5 + (seq_len(nrow(d)) %% 3) / 2
  )
}

synthetic_data <- function() {
  set.seed(20260101)
  n <- 600
  group <- rep(c(0L, 1L), length.out = n)
  stratum <- sample(c("a", "b", "c"), n, replace = TRUE)
  rate <- 1 / (700 * ifelse(group == 1, 1.4, 1) * c(a = 1, b = 0.7, c = 1.3)[stratum])
  event_time <- rexp(n, rate)
  censor_time <- runif(n, 200, 1500)
  # Round to 30-day multiples so that events and censorings tie heavily.
  time <- pmax(30, 30 * round(pmin(event_time, censor_time) / 30))
  status <- as.integer(event_time <= censor_time)
  weight <- 0.5 + (seq_len(n) %% 3) / 2
  data.frame(time = time, status = status, group = group, stratum = stratum, weight = weight)
}

curve_frame <- function(fit) {
  strata <- if (is.null(fit$strata)) rep("all", length(fit$time)) else
    rep(sub(".*=", "", names(fit$strata)), fit$strata)
  data.frame(
    group = strata, time = fit$time, n_risk = fit$n.risk, n_event = fit$n.event,
    n_censor = fit$n.censor, surv = fit$surv, lower = fit$lower, upper = fit$upper,
    std_err = fit$std.err
  )
}

table_frame <- function(fit, tau) {
  tab <- summary(fit, rmean = tau)$table
  if (is.null(dim(tab))) tab <- t(as.matrix(tab))
  groups <- if (is.null(rownames(tab))) "all" else sub(".*=", "", rownames(tab))
  data.frame(
    group = groups, records = tab[, "records"], events = tab[, "events"],
    rmean = tab[, "rmean"], se_rmean = tab[, "se(rmean)"], median = tab[, "median"],
    lcl = tab[, "0.95LCL"], ucl = tab[, "0.95UCL"]
  )
}

logrank_frame <- function(d) {
  # survdiff(Surv(time, status) ~ group) and survdiff(Surv(time, status) ~ group + strata(stratum))
  plain <- survdiff(Surv(time, status) ~ group, data = d)
  ds <- d[!is.na(d$stratum), ]
  strat <- survdiff(Surv(time, status) ~ group + strata(stratum), data = ds)
  # As print.survdiff: groups with a positive expected count (summed over strata) - 1.
  # survdiff(Surv(time, status) ~ stratum): a three-or-more-group test
  three <- survdiff(Surv(time, status) ~ stratum, data = ds)
  df_of <- function(s) sum((if (is.matrix(s$exp)) rowSums(s$exp) else s$exp) > 0) - 1
  data.frame(
    test = c("plain", "stratified", "by_stratum"),
    chisq = c(plain$chisq, strat$chisq, three$chisq),
    df = c(df_of(plain), df_of(strat), df_of(three)),
    p = c(
      pchisq(plain$chisq, df_of(plain), lower.tail = FALSE),
      pchisq(strat$chisq, df_of(strat), lower.tail = FALSE),
      pchisq(three$chisq, df_of(three), lower.tail = FALSE)
    )
  )
}

at_frame <- function(fit) {
  # summary(fit, times = c(365, 730))
  s <- summary(fit, times = c(365, 730))
  data.frame(
    group = sub(".*=", "", as.character(s$strata)), time = s$time, surv = s$surv,
    lower = s$lower, upper = s$upper
  )
}

reference <- function(d, name, tau) {
  write_data(d, paste0("km_", name, ".csv"))
  # survfit(Surv(time, status) ~ group, conf.type = "log-log")
  fit <- survfit(Surv(time, status) ~ group, data = d, conf.type = "log-log")
  write_ref(curve_frame(fit), paste0(name, "_survfit.csv"))
  write_ref(at_frame(fit), paste0(name, "_at.csv"))
  # summary(survfit(...), rmean = tau)$table: rmean, se(rmean), median and its CI
  write_ref(table_frame(fit, tau), paste0(name, "_table.csv"))
  # survfit(Surv(time, status) ~ 1, conf.type = "log-log"): the pooled curve
  pooled <- survfit(Surv(time, status) ~ 1, data = d, conf.type = "log-log")
  write_ref(curve_frame(pooled), paste0(name, "_pooled.csv"))
  write_ref(table_frame(pooled, tau), paste0(name, "_pooled_table.csv"))
  write_ref(logrank_frame(d), paste0(name, "_logrank.csv"))
  # Reverse KM: survfit(Surv(time, 1 - status) ~ 1, conf.type = "log-log")
  reverse <- survfit(Surv(time, 1 - status) ~ 1, data = d, conf.type = "log-log")
  write_ref(table_frame(reverse, tau), paste0(name, "_follow_up.csv"))
  # survfit(Surv(time, status) ~ group, weights = weight, conf.type = "log-log")
  weighted <- survfit(Surv(time, status) ~ group, data = d, weights = weight,
                      conf.type = "log-log")
  write_ref(curve_frame(weighted), paste0(name, "_weighted.csv"))
}

# Median exactly at 0.5: print(survfit(Surv(c(1, 2, 3, 4, 5, 6), c(1, 1, 1, 0, 1, 1)) ~ 1))
tiny <- survfit(Surv(c(1, 2, 3, 4, 5, 6), c(1, 1, 1, 0, 1, 1)) ~ 1, conf.type = "log-log")
write_ref(table_frame(tiny, 6), "tiny_table.csv")

reference(lung_data(), "lung", tau = 730)
reference(synthetic_data(), "synthetic", tau = 730)
cat("wrote", length(list.files(out_dir)), "files to", out_dir, "\n")
