# Helpers shared by versus_r.R and versus_r_tte.R: each fit timed alone, and the numbers
# printed as CSV lines that benchmarks/versus_r_common.py parses:
#   time,<case>,<repeat>,<seconds>     value,<case>,<key>_<i>,<number>
# The sourcing script defines repeats_of(case), the number of fits of a case.

timed <- function(case, fit) {
  result <- NULL
  for (i in seq_len(repeats_of(case))) {
    seconds <- system.time(result <- fit())[["elapsed"]]
    cat(sprintf("time,%s,%d,%.6f\n", case, i, seconds))
  }
  result
}

value <- function(case, key, x) {
  cat(sprintf("value,%s,%s_%d,%.17g\n", case, key, seq_along(x), x), sep = "")
}

cox_values <- function(case, fit) {
  value(case, "coef", unname(coef(fit)))
  value(case, "se", unname(sqrt(diag(vcov(fit)))))  # robust when clustered
}

# One frame of a `registry tte --csv` export: only `keep` columns, classes from the export's
# data dictionary, only the rows of `outcome` (`folder` and `outcome` are the calling script's).
read_frame <- function(name, keep) {
  dictionary <- read.csv(file.path(folder, "data_dictionary.csv"), colClasses = "character")
  types <- dictionary[dictionary$file == name, ]
  header <- strsplit(readLines(file.path(folder, paste0(name, ".csv")), n = 1), ",")[[1]]
  type <- types$type[match(header, types$column)]
  classes <- ifelse(type == "Boolean", "logical",
             ifelse(type == "String", "character",
             ifelse(startsWith(type, "Int"), "integer",
             ifelse(startsWith(type, "Float"), "numeric", "NULL"))))
  classes[!header %in% keep] <- "NULL"
  frame <- read.csv(file.path(folder, paste0(name, ".csv")), colClasses = classes,
                    na.strings = "")
  frame[frame$outcome == outcome, setdiff(keep, "outcome")]
}

# Kaplan-Meier of the outcome (event 1; death censored) per arm (ever treated or not), log-log
# CI, timed; S and its CI limits of each arm at the `grid` days as value lines.
km_by_arm <- function(case, rows, grid) {
  curves <- data.frame(time = rows$duration_days, status = as.integer(rows$event == 1L),
                       arm = factor(ifelse(rows$treated, "treated", "untreated"),
                                    levels = c("treated", "untreated")))
  fit <- timed(case, function() {
    survfit(Surv(time, status) ~ arm, data = curves, conf.type = "log-log")
  })
  at <- summary(fit, times = grid, extend = TRUE)
  for (arm in levels(curves$arm)) {
    mine <- at$strata == paste0("arm=", arm)
    value(case, paste0("surv_", arm), at$surv[mine])
    value(case, paste0("lower_", arm), at$lower[mine])
    value(case, paste0("upper_", arm), at$upper[mine])
  }
}
