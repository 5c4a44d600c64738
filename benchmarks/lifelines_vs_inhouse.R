# R's reference values for `benchmarks/lifelines_vs_inhouse.py`: survival's fits of every
# model that lifelines and the in-house engine both fit, on the frames `registry tte --csv`
# wrote (the primary outcome's rows), so that both engines are held to R on the same data.
#
# Usage: Rscript benchmarks/lifelines_vs_inhouse.R <folder> <cases> <grid> <outcome>
#          <covariates> [<weights.csv>]
#   <folder>      the export: outcomes.csv, landmark.csv, counting.csv, data_dictionary.csv
#   <cases>       comma-separated, from km, cox_naive, cox_naive_adj, cox_landmark,
#                 cox_landmark_adj, cox_tv, cox_tv_adj, cox_iptw
#   <grid>        comma-separated days at which Kaplan-Meier curves are compared
#   <outcome>     the study's primary outcome
#   <covariates>  the study's adjustment covariates, comma-separated, in its order
#   <weights.csv> for cox_iptw: one column `w`, the stabilised weights of the landmark rows
#                 with has_covariates, in file order (written by the Python side)
# The design is the study's (analysis/common.py covariate_matrix): treated, then each
# covariate as a number, sex as male = (sex == "M"); adjusted models use only the rows with
# has_covariates. Fits are timed once (system.time, elapsed). Prints CSV lines:
#   info,<key>,<value>   time,<case>,1,<seconds>   value,<case>,<key>_<i>,<number as %.17g>
#
# The R calls, one per case (data built below):
#   km               survfit(Surv(time, status) ~ arm, conf.type = "log-log")
#   cox_naive[_adj]  coxph(Surv(duration_days, event == 1) ~ treated [+ covariates], ties = "efron")
#   cox_landmark[_adj]  the same on landmark.csv
#   cox_tv[_adj]     coxph(Surv(start, stop, event == 1) ~ treated [+ covariates], ties = "efron")
#   cox_iptw         coxph(Surv(duration_days, event == 1) ~ treated, weights = w, robust = TRUE)

suppressPackageStartupMessages(library(survival))

args <- commandArgs(trailingOnly = TRUE)
folder <- args[1]
cases <- strsplit(args[2], ",", fixed = TRUE)[[1]]
grid <- as.numeric(strsplit(args[3], ",", fixed = TRUE)[[1]])
outcome <- args[4]
covariates <- if (nzchar(args[5])) strsplit(args[5], ",", fixed = TRUE)[[1]] else character()
weights_file <- if (length(args) >= 6) args[6] else ""

cat(sprintf("info,R,%s\n", paste(R.version$major, R.version$minor, sep = ".")))
cat(sprintf("info,survival,%s\n", packageVersion("survival")))

repeats_of <- function(case) 1L
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(here, "versus_r_common.R"))


design <- function(frame, adjusted) {
  x <- data.frame(treated = as.numeric(frame$treated))
  if (!adjusted) return(x)
  for (name in covariates) {
    if (name == "sex") x$male <- as.numeric(frame$sex == "M")
    else x[[name]] <- as.numeric(frame[[name]])
  }
  x
}

model <- function(response, x) reformulate(names(x), response = response)

base <- c("outcome", "treated", "event", "has_covariates", covariates)
frames <- list()
frame_of <- function(name) {
  if (is.null(frames[[name]])) {
    keep <- if (name == "counting") c(base, "start", "stop") else c(base, "duration_days")
    frames[[name]] <<- read_frame(name, keep)
  }
  frames[[name]]
}

fixed_cox <- function(case, name, adjusted) {
  rows <- frame_of(name)
  if (adjusted) rows <- rows[rows$has_covariates, ]
  x <- design(rows, adjusted)
  data <- cbind(data.frame(time = rows$duration_days, status = as.integer(rows$event == 1L)), x)
  formula <- model("Surv(time, status)", x)
  cox_values(case, timed(case, function() coxph(formula, data = data, ties = "efron")))
}

for (case in cases) {
  if (case == "km") {
    km_by_arm(case, frame_of("outcomes"), grid)
  } else if (case %in% c("cox_naive", "cox_naive_adj")) {
    fixed_cox(case, "outcomes", endsWith(case, "_adj"))
  } else if (case %in% c("cox_landmark", "cox_landmark_adj")) {
    fixed_cox(case, "landmark", endsWith(case, "_adj"))
  } else if (case %in% c("cox_tv", "cox_tv_adj")) {
    rows <- frame_of("counting")
    adjusted <- endsWith(case, "_adj")
    if (adjusted) rows <- rows[rows$has_covariates, ]
    x <- design(rows, adjusted)
    data <- cbind(data.frame(start = rows$start, stop = rows$stop,
                             status = as.integer(rows$event == 1L)), x)
    formula <- model("Surv(start, stop, status)", x)
    cox_values(case, timed(case, function() coxph(formula, data = data, ties = "efron")))
  } else if (case == "cox_iptw") {
    rows <- frame_of("landmark")
    rows <- rows[rows$has_covariates, ]
    w <- read.csv(weights_file)$w
    data <- data.frame(time = rows$duration_days, status = as.integer(rows$event == 1L),
                       treated = as.numeric(rows$treated), w = w)
    fit <- timed(case, function() {
      coxph(Surv(time, status) ~ treated, data = data, weights = w, robust = TRUE,
            ties = "efron")
    })
    cox_values(case, fit)
  } else {
    stop("unknown case: ", case)
  }
}
