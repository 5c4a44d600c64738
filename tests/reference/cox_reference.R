# Golden numbers for registry/models/cox/ (the package), from R's survival::coxph and cox.zph.
#
# Run from the repository root:  Rscript tests/reference/cox_reference.R
# (R 4.2, survival 3.5-3). It writes
#   tests/data/cox_*.csv              the data sets, numbers printed with %.17g
#   tests/reference/cox/fits.csv      one row per (case, term): coef, se_model, se_robust,
#                                     loglik_null, loglik, n, events, iter
#   tests/reference/cox/zph.csv       one row per (case, term): cox.zph chisq, df, p
#   tests/reference/cox/schoenfeld_<case>.csv   one row per event, for every cox.zph case:
#                                     time = cox.zph(fit)$time, km = $x, then $y (the scaled
#                                     Schoenfeld residuals) one column per term, in $y's row order
# Every fit uses R's defaults: Efron ties, coxph.control(eps = 1e-9, iter.max = 20).
suppressPackageStartupMessages(library(survival))

data_dir <- "tests/data"
out_dir <- "tests/reference/cox"
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

full <- function(x) sprintf("%.17g", x)

write_data <- function(df, name) {
  df[] <- lapply(df, function(col) if (is.numeric(col)) full(col) else col)
  write.csv(df, file.path(data_dir, paste0("cox_", name, ".csv")), row.names = FALSE, quote = FALSE)
}

fits <- list()
zphs <- list()

record <- function(case, fit) {
  robust <- !is.null(fit$naive.var)
  se_model <- sqrt(diag(if (robust) fit$naive.var else fit$var))
  se_robust <- if (robust) sqrt(diag(fit$var)) else rep(NA_real_, length(se_model))
  fits[[case]] <<- data.frame(
    case = case, term = names(coef(fit)), coef = full(coef(fit)), se_model = full(se_model),
    se_robust = full(se_robust), loglik_null = full(fit$loglik[1]), loglik = full(fit$loglik[2]),
    n = fit$n, events = fit$nevent, iter = fit$iter
  )
}

record_zph <- function(case, fit) {
  zph <- cox.zph(fit)  # transform = "km", terms = TRUE, global = TRUE
  record_schoenfeld(case, zph)
  tab <- zph$table
  zphs[[case]] <<- data.frame(
    case = case, term = rownames(tab), chisq = full(tab[, "chisq"]), df = tab[, "df"],
    p = full(tab[, "p"])
  )
}

# cox.zph(fit)$time, $x and $y (scaled Schoenfeld residuals), all at full precision
record_schoenfeld <- function(case, zph) {
  out <- data.frame(time = full(zph$time), km = full(zph$x))
  for (term in colnames(zph$y)) out[[term]] <- full(zph$y[, term])
  write.csv(out, file.path(out_dir, paste0("schoenfeld_", case, ".csv")), row.names = FALSE,
            quote = FALSE)
}

## 1. Stanford heart transplant: transplant as a time-varying covariate ---------------------
heart2 <- heart
heart2$transplant <- as.numeric(as.character(heart2$transplant))
write_data(heart2[, c("id", "start", "stop", "event", "transplant", "age", "year", "surgery")], "heart")
# coxph(Surv(start, stop, event) ~ transplant + age + year + surgery, data = heart)
record("heart", coxph(Surv(start, stop, event) ~ transplant + age + year + surgery, data = heart2))
# coxph(Surv(start, stop, event) ~ transplant + age + year + surgery + cluster(id), data = heart)
record("heart_cluster",
       coxph(Surv(start, stop, event) ~ transplant + age + year + surgery + cluster(id), data = heart2))
# cox.zph(coxph(Surv(start, stop, event) ~ transplant + age + year + surgery, data = heart))
record_zph("heart", coxph(Surv(start, stop, event) ~ transplant + age + year + surgery, data = heart2))

# The naive analysis: transplant (ever) counted from day one -> immortal time bias, HR ~ 0.18.
jasa2 <- data.frame(futime = jasa$futime, fustat = jasa$fustat, transplant = jasa$transplant)
write_data(jasa2, "jasa")
# coxph(Surv(futime, fustat) ~ transplant, data = jasa)
record("jasa_naive", coxph(Surv(futime, fustat) ~ transplant, data = jasa2))

## 2. Clustered robust variance ------------------------------------------------------------
write_data(bladder2[, c("id", "start", "stop", "event", "rx", "number", "size", "enum")], "bladder2")
# coxph(Surv(start, stop, event) ~ rx + number + size + cluster(id), data = bladder2)   (AG model)
record("bladder2_ag",
       coxph(Surv(start, stop, event) ~ rx + number + size + cluster(id), data = bladder2))
write_data(bladder[, c("id", "stop", "event", "rx", "number", "size", "enum")], "bladder")
# coxph(Surv(stop, event) ~ rx + number + size + strata(enum) + cluster(id), data = bladder)  (WLW)
record("bladder_wlw",
       coxph(Surv(stop, event) ~ rx + number + size + strata(enum) + cluster(id), data = bladder))

colon2 <- data.frame(
  id = colon$id, time = colon$time, status = colon$status, etype = colon$etype,
  rx_lev = as.numeric(colon$rx == "Lev"), rx_lev5fu = as.numeric(colon$rx == "Lev+5FU"),
  extent = colon$extent, node4 = colon$node4
)
write_data(colon2, "colon")
# coxph(Surv(time, status) ~ rx + extent + node4 + cluster(id), data = colon)
record("colon_cluster",
       coxph(Surv(time, status) ~ rx_lev + rx_lev5fu + extent + node4 + cluster(id), data = colon2))
# coxph(Surv(time, status) ~ rx + extent + node4 + strata(etype) + cluster(id), data = colon)
record("colon_strata_cluster",
       coxph(Surv(time, status) ~ rx_lev + rx_lev5fu + extent + node4 + strata(etype) + cluster(id),
             data = colon2))

## 3. lung: tied days, Efron; weights; strata ----------------------------------------------
lung2 <- na.omit(lung[, c("time", "status", "age", "sex", "ph.ecog")])
lung2$status <- lung2$status - 1  # 1/2 -> 0/1
lung2$w <- 0.5 + (seq_len(nrow(lung2)) %% 3) / 2
lung2$id <- seq_len(nrow(lung2))
write_data(lung2, "lung")
# coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung2)
record("lung", coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung2))
# coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung2, robust = TRUE)
record("lung_robust", coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung2, robust = TRUE))
# coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung2, weights = w, robust = FALSE)
# (robust = FALSE must be explicit: coxph turns the robust variance on for non-integer weights)
record("lung_weighted",
       coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung2, weights = w, robust = FALSE))
# coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung2, weights = w, robust = TRUE)
record("lung_weighted_robust",
       coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung2, weights = w, robust = TRUE))
# coxph(Surv(time, status) ~ age + ph.ecog + strata(sex), data = lung2)
record("lung_strata", coxph(Surv(time, status) ~ age + ph.ecog + strata(sex), data = lung2))

## 4. cox.zph --------------------------------------------------------------------------------
# cox.zph(coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung2))
record_zph("lung", coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung2))
# cox.zph(coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung2, weights = w))
record_zph("lung_weighted", coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung2, weights = w))
# cox.zph(coxph(Surv(time, status) ~ age + ph.ecog + strata(sex), data = lung2))
record_zph("lung_strata", coxph(Surv(time, status) ~ age + ph.ecog + strata(sex), data = lung2))
write_data(veteran[, c("time", "status", "trt", "karno", "age")], "veteran")
# coxph(Surv(time, status) ~ trt + karno + age, data = veteran)
record("veteran", coxph(Surv(time, status) ~ trt + karno + age, data = veteran))
# cox.zph(coxph(Surv(time, status) ~ trt + karno + age, data = veteran))   karno violates PH
record_zph("veteran", coxph(Surv(time, status) ~ trt + karno + age, data = veteran))

## 5. Synthetic (start, stop] data: delayed entry, tied integer days, a time-varying covariate --
set.seed(20240611)
n_id <- 1500
rows <- list()
for (i in seq_len(n_id)) {
  x1 <- round(rnorm(1), 3)
  x2 <- rbinom(1, 1, 0.4)
  site <- sample(1:3, 1)
  entry <- if (runif(1) < 0.3) sample(1:60, 1) else 0
  switch_day <- entry + sample(5:400, 1)
  lp0 <- 0.5 * x1 - 0.4 * x2
  t_event <- entry + ceiling(rexp(1, exp(lp0) / 500))
  t_cens <- entry + sample(30:700, 1)
  stop <- min(t_event, t_cens)
  event <- as.numeric(t_event <= t_cens)
  if (switch_day < stop) {
    rows[[i]] <- data.frame(id = i, start = c(entry, switch_day), stop = c(switch_day, stop),
                            event = c(0, event), z = c(0, 1), x1 = x1, x2 = x2, site = site)
  } else {
    rows[[i]] <- data.frame(id = i, start = entry, stop = stop, event = event, z = 0,
                            x1 = x1, x2 = x2, site = site)
  }
}
sim <- do.call(rbind, rows)
sim$w <- round(runif(nrow(sim), 0.2, 3), 2)
write_data(sim, "sim")
# coxph(Surv(start, stop, event) ~ x1 + x2 + z + cluster(id), data = sim)
record("sim_cluster", coxph(Surv(start, stop, event) ~ x1 + x2 + z + cluster(id), data = sim))
# coxph(Surv(start, stop, event) ~ x1 + x2 + z + strata(site) + cluster(id), data = sim, weights = w)
record("sim_weighted_strata",
       coxph(Surv(start, stop, event) ~ x1 + x2 + z + strata(site) + cluster(id), data = sim,
             weights = w))
# cox.zph(coxph(Surv(start, stop, event) ~ x1 + x2 + z, data = sim))
record_zph("sim", coxph(Surv(start, stop, event) ~ x1 + x2 + z, data = sim))
# cox.zph(coxph(Surv(start, stop, event) ~ x1 + x2 + z + strata(site), data = sim, weights = w))
record_zph("sim_weighted_strata",
           coxph(Surv(start, stop, event) ~ x1 + x2 + z + strata(site), data = sim, weights = w))

write.csv(do.call(rbind, fits), file.path(out_dir, "fits.csv"), row.names = FALSE)
write.csv(do.call(rbind, zphs), file.path(out_dir, "zph.csv"), row.names = FALSE)
