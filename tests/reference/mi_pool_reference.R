# Golden numbers for registry/analysis/imputation/pool.py (Rubin's rules), from R's mice::pool.
#
# Run from the repository root:  Rscript tests/reference/mi_pool_reference.R
# (R 4.2, survival 3.5-3, mice 3.15.0, broom 1.0.3; Debian r-cran-mice). Data: survival's
# lung (228 patients), where meal.cal (47), wt.loss (14), pat.karno (3), ph.karno (1) and
# ph.ecog (1) are missing. mice imputes them m = 5 times (pmm, the default for numbers) from
# the other columns and the Nelson-Aalen cumulative hazard (White & Royston 2009; time itself
# is not a predictor), then
#   fit <- with(imp, coxph(Surv(time, event) ~ age + female + ph.karno + wt.loss + meal.cal))
#   summary(pool(fit), conf.int = TRUE, type = "all")
# It writes, numbers printed with %.17g:
#   tests/reference/mi_pool/completed.csv  the 5 completed datasets: imputation (1-5), id, and
#                                          the columns of the model
#   tests/reference/mi_pool/fits.csv       one row per (case, imputation, term): coef, var
#                                          (diag(vcov(fit))), events
#   tests/reference/mi_pool/pooled.csv     one row per (case, term): mice's m, estimate (qbar),
#                                          ubar, b, t, dfcom, df, riv, lambda, fmi, std.error,
#                                          statistic, p.value, ci_lower, ci_upper (95 %)
# Cases: "lung" as above (dfcom from get.dfcom: coxph -> nevent - p); "lung_dfcom_inf" the
# same fits with pool(fit, dfcom = Inf); "identical" five copies of imputation 1's fit,
# as.mira(rep(list(fit1), 5)), where b = 0.
suppressPackageStartupMessages({
  library(survival)
  library(mice)
})

out_dir <- "tests/reference/mi_pool"
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
full <- function(x) sprintf("%.17g", x)

d <- data.frame(
  id = seq_len(nrow(lung)), time = lung$time, event = lung$status - 1, age = lung$age,
  female = lung$sex - 1, ph.ecog = lung$ph.ecog, ph.karno = lung$ph.karno,
  pat.karno = lung$pat.karno, wt.loss = lung$wt.loss, meal.cal = lung$meal.cal
)
d$hazard <- nelsonaalen(d, time, event)
pred <- make.predictorMatrix(d)
pred[, c("id", "time")] <- 0
imp <- mice(d, m = 5, seed = 20260101, predictorMatrix = pred, printFlag = FALSE)

model <- c("age", "female", "ph.karno", "wt.loss", "meal.cal")
long <- complete(imp, action = "long")
completed <- data.frame(imputation = long$.imp, long[, c("id", "time", "event", model)])
completed[] <- lapply(completed, full)
write.csv(completed, file.path(out_dir, "completed.csv"), row.names = FALSE, quote = FALSE)

# fit <- with(imp, coxph(Surv(time, event) ~ age + female + ph.karno + wt.loss + meal.cal))
fit <- with(imp, coxph(Surv(time, event) ~ age + female + ph.karno + wt.loss + meal.cal))
fit1 <- fit$analyses[[1]]
identical_fits <- as.mira(rep(list(fit1), 5))

per_fit <- function(case, fits) {
  do.call(rbind, lapply(seq_along(fits), function(j) {
    f <- fits[[j]]
    data.frame(case = case, imputation = j, term = names(coef(f)), coef = full(coef(f)),
               var = full(diag(vcov(f))), events = f$nevent)
  }))
}

pooled <- function(case, pool_result) {
  s <- summary(pool_result, conf.int = TRUE, type = "all")
  data.frame(
    case = case, term = as.character(s$term), m = s$m, estimate = full(s$estimate),
    ubar = full(s$ubar), b = full(s$b), t = full(s$t), dfcom = full(s$dfcom), df = full(s$df),
    riv = full(s$riv), lambda = full(s$lambda), fmi = full(s$fmi),
    std.error = full(s$std.error), statistic = full(s$statistic), p.value = full(s$p.value),
    ci_lower = full(s[["2.5 %"]]), ci_upper = full(s[["97.5 %"]])
  )
}

fits <- rbind(per_fit("lung", fit$analyses), per_fit("identical", identical_fits$analyses))
write.csv(fits, file.path(out_dir, "fits.csv"), row.names = FALSE)
write.csv(rbind(
  pooled("lung", pool(fit)),                          # pool(fit)
  pooled("lung_dfcom_inf", pool(fit, dfcom = Inf)),   # pool(fit, dfcom = Inf)
  pooled("identical", pool(identical_fits))           # pool(as.mira(rep(list(fit1), 5)))
), file.path(out_dir, "pooled.csv"), row.names = FALSE)
