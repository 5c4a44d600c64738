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
