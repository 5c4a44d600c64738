# Golden values for the PRO Wilcoxon signed-rank test (tests/test_pro.py).
#
# Run from the repository root:  Rscript tests/reference/pro_wilcoxon_reference.R
# Made with R 4.2.2 (datasets, stats). Writes
#   tests/data/wilcoxon_pairs.csv          dataset, x, y: the paired samples below
#   tests/reference/pro/wilcoxon.csv       dataset, n, zeros, ties, statistic, p for
#     wilcox.test(x, y, paired = TRUE)     R's defaults: zeros dropped, exact p for n < 50
#                                          without ties or zeros, else the normal
#                                          approximation with continuity correction
# The samples (n below and above 50, with and without ties and zeros):
#   sleep       sleep$extra[group == 1] vs [group == 2]   n 10, one zero, ties
#   pressure    pressure$pressure vs pressure$temperature n 19, exact
#   mtcars      mtcars$mpg vs mtcars$qsec                 n 32, exact
#   attitude    attitude$rating vs attitude$complaints    n 30, three zeros, ties
#   lifecycle   LifeCycleSavings$sr vs $ddpi              n 50, no ties: normal approximation
#   iris        iris$Sepal.Length vs iris$Petal.Length    n 150, ties

fmt <- function(x) sprintf("%.17g", x)
pairs <- list(
  sleep = list(sleep$extra[sleep$group == 1], sleep$extra[sleep$group == 2]),
  pressure = list(pressure$pressure, pressure$temperature),
  mtcars = list(mtcars$mpg, mtcars$qsec),
  attitude = list(attitude$rating, attitude$complaints),
  lifecycle = list(LifeCycleSavings$sr, LifeCycleSavings$ddpi),
  iris = list(iris$Sepal.Length, iris$Petal.Length)
)
data <- do.call(rbind, lapply(names(pairs), function(name) {
  data.frame(dataset = name, x = fmt(pairs[[name]][[1]]), y = fmt(pairs[[name]][[2]]))
}))
write.csv(data, "tests/data/wilcoxon_pairs.csv", row.names = FALSE, quote = FALSE)
out <- do.call(rbind, lapply(names(pairs), function(name) {
  x <- pairs[[name]][[1]]
  y <- pairs[[name]][[2]]
  d <- (x - y)[x - y != 0]
  test <- suppressWarnings(wilcox.test(x, y, paired = TRUE))
  data.frame(
    dataset = name, n = length(x), zeros = sum(x == y),
    ties = length(unique(abs(d))) != length(d),
    statistic = fmt(test$statistic), p = fmt(test$p.value)
  )
}))
dir.create("tests/reference/pro", showWarnings = FALSE)
write.csv(out, "tests/reference/pro/wilcoxon.csv", row.names = FALSE, quote = FALSE)
