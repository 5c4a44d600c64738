# Golden values for "survival at 1-5 years" past the last follow-up (tests/test_km.py).
#
# Run from the repository root:  Rscript tests/reference/km_years_reference.R
# Made with R 4.2.2 and survival 3.5-3. Reads tests/data/km_lung.csv and km_synthetic.csv
# (written by km_reference.R) and writes tests/reference/km/<data>_years.csv: group, time,
# surv, lower, upper, max_time for
#   summary(survfit(Surv(time, status) ~ group, conf.type = "log-log"),
#           times = c(365, 730, 1096, 1461, 1826), extend = FALSE)
# extend = FALSE (the default) returns no row for a time past the group's largest observed
# time (event or censoring): the registry writes those as null.

suppressPackageStartupMessages(library(survival))

fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))
for (name in c("lung", "synthetic")) {
  d <- read.csv(file.path("tests/data", paste0("km_", name, ".csv")))
  fit <- survfit(Surv(time, status) ~ group, data = d, conf.type = "log-log")
  s <- summary(fit, times = c(365, 730, 1096, 1461, 1826), extend = FALSE)
  group <- sub("^group=", "", as.character(s$strata))
  out <- data.frame(
    group = group, time = s$time, surv = fmt(s$surv), lower = fmt(s$lower),
    upper = fmt(s$upper), max_time = tapply(d$time, d$group, max)[group]
  )
  write.csv(out, file.path("tests/reference/km", paste0(name, "_years.csv")),
            row.names = FALSE, quote = FALSE)
}
