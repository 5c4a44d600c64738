# End-to-end reference for registry/analysis.py: every model of one outcome, fitted in R
# on the product's own frames (the adjacent outcome of the demo cohort: 1,700 synthetic
# patients, seed 20260101; ids replaced by row numbers).
# The frames are written by tests/reference/make_demo_frames.py (rerun it, then this).
# Data: tests/data/demo_adjacent_{outcomes,counting,landmark}.csv
# Run from the repository root: Rscript tests/reference/analysis_reference.R
library(survival)
library(cmprsk)
out <- "tests/reference/analysis"
fmt <- function(x) sprintf("%.17g", x)
o <- read.csv("tests/data/demo_adjacent_outcomes.csv")
cp <- read.csv("tests/data/demo_adjacent_counting.csv")
lm <- read.csv("tests/data/demo_adjacent_landmark.csv")
for (d in c("o", "cp", "lm")) {
  x <- get(d); x$male <- as.integer(x$sex == "M"); assign(d, x)
}
covs <- "age + male + bmd_t_score + glucocorticoids + prior_vertebral_fractures + n_index_levels"
years <- c(365, 730, 1096, 1461, 1826)
ctl <- coxph.control(eps = 1e-12, iter.max = 50, toler.inf = 1e-6)
rows <- list()
add <- function(model, quantity, value) {
  rows[[length(rows) + 1]] <<- data.frame(model = model, quantity = quantity, value = fmt(value))
}

# Kaplan-Meier per arm: survfit(Surv(duration_days, event == 1) ~ treated, conf.type = "log-log")
km <- survfit(Surv(duration_days, event == 1) ~ treated, data = o, conf.type = "log-log")
s <- summary(km, times = years, extend = TRUE)
for (i in seq_along(s$time)) {
  arm <- if (grepl("=1", s$strata[i])) "treated" else "untreated"
  y <- as.character(match(s$time[i], years))
  add(paste0("km_", arm), paste0("surv_", y), s$surv[i])
  add(paste0("km_", arm), paste0("lower_", y), s$lower[i])
  add(paste0("km_", arm), paste0("upper_", y), s$upper[i])
}
# survdiff(Surv(duration_days, event == 1) ~ treated) and + strata(site_id)
add("logrank", "chisq", survdiff(Surv(duration_days, event == 1) ~ treated, data = o)$chisq)
add("logrank_site", "chisq",
    survdiff(Surv(duration_days, event == 1) ~ treated + strata(site_id), data = o)$chisq)

cox_rows <- function(name, fit) {
  add(name, "coef", coef(fit)[["treated"]])
  add(name, "se", sqrt(diag(vcov(fit)))[[1]])
}
oc <- subset(o, has_covariates == 1); cpc <- subset(cp, has_covariates == 1)
lmc <- subset(lm, has_covariates == 1)
# coxph(Surv(duration_days, event == 1) ~ treated), Efron
cox_rows("unadjusted", coxph(Surv(duration_days, event == 1) ~ treated, data = o, control = ctl))
cox_rows("adjusted", coxph(as.formula(paste("Surv(duration_days, event == 1) ~ treated +", covs)),
                           data = oc, control = ctl))
# coxph(Surv(start, stop, event == 1) ~ treated): the time-varying (primary) analysis
cox_rows("time_varying", coxph(Surv(start, stop, event == 1) ~ treated, data = cp, control = ctl))
tva <- coxph(as.formula(paste("Surv(start, stop, event == 1) ~ treated +", covs)), data = cpc,
             control = ctl)
cox_rows("time_varying_adjusted", tva)
# cause-specific hazard of death (the competing event): coxph(Surv(start, stop, event == 2) ~ ...)
cox_rows("death_cause_specific",
         coxph(as.formula(paste("Surv(start, stop, event == 2) ~ treated +", covs)), data = cpc,
               control = ctl))
cox_rows("landmark", coxph(Surv(duration_days, event == 1) ~ treated, data = lm, control = ctl))
# IPTW: glm propensity, stabilised weights, coxph(..., weights = w, robust = TRUE)
ps <- fitted(glm(as.formula(paste("treated ~", covs)), family = binomial, data = lmc,
                 control = glm.control(epsilon = 1e-14, maxit = 100)))
share <- mean(lmc$treated)
lmc$w <- ifelse(lmc$treated == 1, share / ps, (1 - share) / (1 - ps))
cox_rows("iptw", coxph(Surv(duration_days, event == 1) ~ treated, data = lmc, weights = w,
                       robust = TRUE, control = ctl))
# cox.zph(time-varying adjusted)
z <- cox.zph(tva)$table
add("ph_test", "treated_chisq", z["treated", "chisq"])
add("ph_test", "global_chisq", z["GLOBAL", "chisq"])
# cuminc(duration_days, event, treated, cencode = 0) at 1-5 years
ci <- timepoints(cuminc(o$duration_days, o$event, o$treated, cencode = 0), years)
add("cif_treated", paste0("cif_", 1:5), ci$est["1 1", ])
add("cif_untreated", paste0("cif_", 1:5), ci$est["0 1", ])
add("gray", "stat", cuminc(o$duration_days, o$event, o$treated, cencode = 0)$Tests[1, "stat"])
# crr(landmark duration, event, treated, failcode = 1, cencode = 0)
fg <- crr(lm$duration_days, lm$event, cbind(treated = lm$treated), failcode = 1, cencode = 0)
add("fine_gray", "coef", fg$coef[[1]])
add("fine_gray", "se", sqrt(fg$var[1, 1]))
# RMST from the landmark to the horizon: summary(survfit(...), rmean = 1736)$table
rm <- summary(survfit(Surv(duration_days, event == 1) ~ treated, data = lm), rmean = 1736)$table
add("rmst", "treated", rm["treated=1", "rmean"]); add("rmst", "untreated", rm["treated=0", "rmean"])
add("rmst", "se_treated", rm["treated=1", "se(rmean)"])
add("rmst", "se_untreated", rm["treated=0", "se(rmean)"])
write.csv(do.call(rbind, rows), file.path(out, "adjacent.csv"), row.names = FALSE)

# Piecewise HRs of the time-varying adjusted model, 0-1 and 1-5 years:
# survSplit(..., cut = 365) then coxph(Surv(start, stop, ev) ~ t01 + t15 + covariates)
cpc$ev <- as.integer(cpc$event == 1)
sp <- survSplit(Surv(start, stop, ev) ~ ., data = cpc, cut = 365, episode = "period")
sp$t01 <- sp$treated * (sp$period == 1); sp$t15 <- sp$treated * (sp$period == 2)
pw <- coxph(as.formula(paste("Surv(start, stop, ev) ~ t01 + t15 +", covs)), data = sp, control = ctl)
pw_rows <- data.frame(model = "piecewise", quantity = c("coef_0_1y", "coef_1_5y", "se_0_1y", "se_1_5y"),
                      value = fmt(c(coef(pw)[["t01"]], coef(pw)[["t15"]], sqrt(diag(vcov(pw)))[1:2])))
write.csv(rbind(read.csv(file.path(out, "adjacent.csv"), colClasses = "character"), pw_rows),
          file.path(out, "adjacent.csv"), row.names = FALSE)
