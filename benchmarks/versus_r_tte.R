# R's side of `benchmarks/versus_r.py --tte`: time survival / cmprsk fits on the
# time-to-event frames that `registry tte --csv` wrote.
#
# Usage: Rscript benchmarks/versus_r_tte.R <folder> <cases> <grid> <outcome> <covariates>
#   <folder>      the export: outcomes.csv, counting.csv and data_dictionary.csv (whose
#                 `type` column gives every column's class; unused columns are skipped)
#   <cases>       comma-separated case:repeats, cases from cox, cox_tv, cox_cluster, km,
#                 cuminc; each repeat is timed alone with system.time (gc() first)
#   <grid>        comma-separated days at which curves are compared (not timed)
#   <outcome>     the outcome whose rows are used (the study's primary outcome)
#   <covariates>  the study's adjustment covariates, comma-separated, in its order
# The design matrix is the study's (registry/iptw.py design_matrix, analysis/common.py
# covariate_matrix): treated, then each covariate as a number, except sex, entered as
# male = (sex == "M"); adjusted models use only the rows with has_covariates.
# Only the fit is timed: reading, filtering, the design matrix and extracting the
# compared numbers are not. Prints the CSV lines benchmarks/versus_r.py parses:
#   info,<key>,<value>
#   time,<case>,<repeat>,<elapsed seconds>
#   value,<case>,<key>,<number as %.17g>

suppressPackageStartupMessages({
  library(survival)
  library(cmprsk)
})

args <- commandArgs(trailingOnly = TRUE)
folder <- args[1]
spec <- strsplit(strsplit(args[2], ",", fixed = TRUE)[[1]], ":", fixed = TRUE)
repeats <- setNames(as.integer(sapply(spec, `[`, 2)), sapply(spec, `[`, 1))
cases <- names(repeats)
grid <- as.numeric(strsplit(args[3], ",", fixed = TRUE)[[1]])
outcome <- args[4]
covariates <- if (nzchar(args[5])) strsplit(args[5], ",", fixed = TRUE)[[1]] else character()

cat(sprintf("info,R,%s\n", paste(R.version$major, R.version$minor, sep = ".")))
cat(sprintf("info,survival,%s\n", packageVersion("survival")))
cat(sprintf("info,cmprsk,%s\n", packageVersion("cmprsk")))
cat(sprintf("info,BLAS,%s\n", basename(extSoftVersion()[["BLAS"]])))

repeats_of <- function(case) repeats[[case]]
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(here, "versus_r_common.R"))


# treated, then the covariates as numbers (sex as male), named as our design matrix.
design <- function(frame) {
  x <- data.frame(treated = as.numeric(frame$treated))
  for (name in covariates) {
    if (name == "sex") x$male <- as.numeric(frame$sex == "M")
    else x[[name]] <- as.numeric(frame[[name]])
  }
  x
}

model <- function(response, x) reformulate(names(x), response = response)

base <- c("outcome", "treated", "event", "has_covariates", covariates)
if (any(c("cox", "km", "cuminc") %in% cases)) {
  outcomes <- read_frame("outcomes", c(base, "duration_days"))
}
if (any(c("cox_tv", "cox_cluster") %in% cases)) {
  counting <- read_frame("counting", c(base, "patient_id", "start", "stop"))
  rows <- counting[counting$has_covariates, ]
  x_tv <- design(rows)
  tv <- cbind(data.frame(start = rows$start, stop = rows$stop,
                         status = as.integer(rows$event == 1L), id = rows$patient_id), x_tv)
  rm(counting, rows)
}

for (case in cases) {
  if (case == "cox") {
    rows <- outcomes[outcomes$has_covariates, ]
    x <- design(rows)
    fixed <- cbind(data.frame(time = rows$duration_days, status = as.integer(rows$event == 1L)),
                   x)
    formula <- model("Surv(time, status)", x)
    fit <- timed(case, function() coxph(formula, data = fixed, ties = "efron"))
    cox_values(case, fit)
  } else if (case == "cox_tv") {
    formula <- model("Surv(start, stop, status)", x_tv)
    fit <- timed(case, function() coxph(formula, data = tv, ties = "efron"))
    cox_values(case, fit)
  } else if (case == "cox_cluster") {
    formula <- model("Surv(start, stop, status)", x_tv)
    fit <- timed(case, function() coxph(formula, data = tv, ties = "efron", cluster = id))
    cox_values(case, fit)
  } else if (case == "km") {
    km_by_arm(case, outcomes, grid)
  } else if (case == "cuminc") {
    time <- outcomes$duration_days
    status <- outcomes$event
    arms <- list(treated = outcomes$treated, untreated = !outcomes$treated)
    fit <- timed(case, function() {
      lapply(arms, function(m) cuminc(time[m], status[m], cencode = 0))
    })
    for (arm in names(arms)) {
      at <- timepoints(fit[[arm]], grid)
      for (cause in 1:2) {
        value(case, paste0("est", cause, "_", arm), at$est[cause, ])
        value(case, paste0("var", cause, "_", arm), at$var[cause, ])
      }
    }
  } else {
    stop("unknown case: ", case)
  }
}
