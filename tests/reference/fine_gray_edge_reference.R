# Golden values for the Fine–Gray edge cases of tests/test_competing.py.
#
# Run from the repository root:  Rscript tests/reference/fine_gray_edge_reference.R
# Made with R 4.2.2, survival 3.5-3 and cmprsk 2.2-11. Reads tests/data/cr_synthetic.csv and
# writes tests/reference/competing/edge_crr.csv (case, coef, se, converged):
#   no_events_in_one_arm  the synthetic data with every cause-1 event of the vertebroplasty
#                         arm made a censoring; the only covariate is the arm (1 = vertebroplasty)
#                         crr(time, status, cbind(treated = arm), failcode = 1, cencode = 0)
#                         -> converged FALSE after crr's 10 iterations, coef running to -Inf
#   constant_0.1          crr(time, status, cbind(c = rep(0.1, n)), failcode = 1, cencode = 0)
#                         -> "converged" with coef 0 and se ~1e14: crr does not refuse it;
#                         registry.models.competing refuses a constant covariate, as fit_cox does

suppressPackageStartupMessages(library(cmprsk))

fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))
d <- read.csv("tests/data/cr_synthetic.csv")
arm <- as.numeric(d$group == "vertebroplasty")
status <- ifelse(arm == 1 & d$status == 1, 0, d$status)
no_events <- crr(d$time, status, cbind(treated = arm), failcode = 1, cencode = 0)
constant <- crr(d$time, d$status, cbind(c = rep(0.1, nrow(d))), failcode = 1, cencode = 0)
fits <- list(no_events_in_one_arm = no_events, constant_0.1 = constant)
out <- data.frame(
  case = names(fits),
  coef = sapply(fits, function(f) fmt(f$coef[1])),
  se = sapply(fits, function(f) fmt(sqrt(f$var[1, 1]))),
  converged = sapply(fits, function(f) f$converged)
)
write.csv(out, "tests/reference/competing/edge_crr.csv", row.names = FALSE, quote = FALSE)
