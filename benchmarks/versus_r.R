# R's side of benchmarks/versus_r.py: time survival / cmprsk fits on the data Python wrote.
#
# Usage: Rscript benchmarks/versus_r.R <folder> <repeats> <cases> <grid>
#   <folder>   holds subjects.csv (time, event, status, arm, x1..x4) and, for the Cox
#              (start, stop] cases, counting.csv (id, start, stop, event, trt, x1..x3)
#   <repeats>  fits per case; each is timed alone with system.time (which runs gc() first)
#   <cases>    comma-separated, from: cox, cox_tv, cox_cluster, km, logrank, cuminc, crr
#   <grid>     comma-separated days at which curves are compared (not timed)
# Only the fit is timed: reading the CSV and extracting the compared numbers are not.
# Prints CSV lines that the Python side parses (anything else on stdout is ignored):
#   info,<key>,<value>
#   time,<case>,<repeat>,<elapsed seconds>
#   value,<case>,<key>,<number as %.17g>

suppressPackageStartupMessages({
  library(survival)
  library(cmprsk)
})

args <- commandArgs(trailingOnly = TRUE)
folder <- args[1]
repeats <- as.integer(args[2])
cases <- strsplit(args[3], ",", fixed = TRUE)[[1]]
grid <- as.numeric(strsplit(args[4], ",", fixed = TRUE)[[1]])

cat(sprintf("info,R,%s\n", paste(R.version$major, R.version$minor, sep = ".")))
cat(sprintf("info,survival,%s\n", packageVersion("survival")))
cat(sprintf("info,cmprsk,%s\n", packageVersion("cmprsk")))
cat(sprintf("info,BLAS,%s\n", basename(extSoftVersion()[["BLAS"]])))

repeats_of <- function(case) repeats
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(here, "versus_r_common.R"))

subjects <- read.csv(
  file.path(folder, "subjects.csv"),
  colClasses = c("integer", "integer", "integer", "integer", "numeric", "integer", "integer",
                 "integer")
)
if (any(c("cox_tv", "cox_cluster") %in% cases)) {
  counting <- read.csv(
    file.path(folder, "counting.csv"),
    colClasses = c("integer", "integer", "integer", "integer", "integer", "numeric", "integer",
                   "integer")
  )
}

for (case in cases) {
  if (case == "cox") {
    fit <- timed(case, function() {
      coxph(Surv(time, event) ~ x1 + x2 + x3 + x4, data = subjects, ties = "efron")
    })
    cox_values(case, fit)
  } else if (case == "cox_tv") {
    fit <- timed(case, function() {
      coxph(Surv(start, stop, event) ~ trt + x1 + x2 + x3, data = counting, ties = "efron")
    })
    cox_values(case, fit)
  } else if (case == "cox_cluster") {
    fit <- timed(case, function() {
      coxph(Surv(start, stop, event) ~ trt + x1 + x2 + x3, data = counting, ties = "efron",
            cluster = id)
    })
    cox_values(case, fit)  # se: the robust (sandwich) standard errors
  } else if (case == "km") {
    fit <- timed(case, function() {
      survfit(Surv(time, event) ~ 1, data = subjects, conf.type = "log-log")
    })
    at <- summary(fit, times = grid)
    value(case, "surv", at$surv)
    value(case, "lower", at$lower)
    value(case, "upper", at$upper)
  } else if (case == "logrank") {
    fit <- timed(case, function() survdiff(Surv(time, event) ~ arm, data = subjects))
    value(case, "chisq", fit$chisq)
  } else if (case == "cuminc") {
    fit <- timed(case, function() cuminc(subjects$time, subjects$status, cencode = 0))
    at <- timepoints(fit, grid)
    for (cause in 1:2) {
      value(case, paste0("est", cause), at$est[cause, ])
      value(case, paste0("var", cause), at$var[cause, ])
    }
  } else if (case == "crr") {
    covariates <- as.matrix(subjects[, c("x1", "x2", "x3", "x4")])
    fit <- timed(case, function() {
      crr(subjects$time, subjects$status, covariates, failcode = 1, cencode = 0)
    })
    value(case, "coef", unname(fit$coef))
    value(case, "se", sqrt(diag(fit$var)))
    value(case, "converged", as.numeric(fit$converged))
  } else {
    stop("unknown case: ", case)
  }
}
