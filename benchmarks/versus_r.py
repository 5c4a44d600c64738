"""Time our survival estimators against R's (survival, cmprsk) on the same data, side by side.

Usage: python benchmarks/versus_r.py [--sizes 100000,1000000] [--crr-sizes 10000,20000]
       python benchmarks/versus_r.py --tte DIR --label TEXT --out-md PATH [--repeats N]

For every size one synthetic cohort is drawn here with a fixed seed (integer days, so many
tied times; about 40% events, split between a cause of interest and a competing cause) and
written as CSV to a scratch folder under benchmarks/out/, deleted afterwards. Our estimators
are timed in this process on arrays already in memory; then benchmarks/versus_r.R reads the
same CSV files and times R's fits with system.time. Both sides time only the fit (no reading,
no extraction of results), run one after the other (never at the same time), and take the
median of 3 repeats (1 at sizes above 100,000, and for crr above 10,000 rows: one R fit at
20,000 rows takes about 3 minutes). Python parses the CSV lines R prints and
checks that both sides estimated the same numbers (max relative difference), so the timings
compare like with like. Results go to benchmarks/results/versus_r_synthetic.md and to the terminal.

Cases: Cox with fixed covariates (4, Efron ties) vs coxph; Cox on (start, stop] rows with a
time-varying treatment vs coxph(Surv(start, stop, event) ~ ...); the same with the robust
(cluster = id) variance; Kaplan-Meier vs survfit; log-rank vs survdiff; cumulative incidence
of both causes vs cmprsk::cuminc; Fine-Gray vs cmprsk::crr. crr's time grows with the square
of the number of rows, so R runs it only at --crr-sizes; ours runs at those and at --sizes.

Skips (message, exit 0) when Rscript or the survival / cmprsk packages are missing.

--tte DIR: instead of synthetic data, the pipeline's own frames, as `registry tte --out DIR
--csv` wrote them (outcomes.csv, counting.csv, data_dictionary.csv), on the rows of the
study's primary outcome (--study, default reports/adjacent_refracture.toml; it must be the
study the export was built with). Cases, each built as registry/analysis builds it: `cox`,
the adjusted ever-treated Cox model (treated plus the study covariates, sex as male, on the
has_covariates rows, event 1 = the outcome, death censored, Efron) vs coxph; `cox_tv`, the
adjusted time-varying model on the (start, stop] rows vs coxph(Surv(start, stop, event));
`cox_cluster`, the same with the robust variance clustered on patient_id; `km`, Kaplan-Meier
per arm vs survfit(~ arm) (log-log CI); `cuminc`, cumulative incidence of the outcome and of
death (competing) per arm vs cmprsk::cuminc per arm. benchmarks/versus_r_tte.R reads the same
CSV files, typed by the data dictionary. Repeats: --repeats (default 3), 1 for a case above
2,000,000 rows. Writes one markdown section (heading, machine, table, method) to --out-md
and prints it. Tolerance: the run exits non-zero after writing the section when any case's
max relative difference exceeds 1e-6 (TOLERANCE), except cases listed in KNOWN_DIFFERENCES
(definitional differences, reported but not held to it; none is known: at 100,000 and
1,000,000 patients every case agrees to 2e-10 or better). Without Rscript or its packages
the section holds only our times ("R not installed") and the exit status is 0.

Modules: versus_r_data.py draws the synthetic cohort, versus_r_synthetic.py runs the
synthetic mode, versus_r_tte.py the --tte mode, versus_r_common.py what both share.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from versus_r_synthetic import run_synthetic
from versus_r_tte import run_tte

from registry.study import DEFAULT_STUDY

HERE = Path(__file__).resolve().parent


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="Rows, comma-separated.")
    parser.add_argument(
        "--crr-sizes", default="10000,20000", help="Rows at which R's crr also runs."
    )
    parser.add_argument(
        "--repeats",
        type=int,
        help="Repeats per size (default 3 up to 100,000 rows, else 1; crr: up to 10,000). "
        "With --tte: per case (default 3; 1 above 2,000,000 rows).",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=HERE / "results" / "versus_r_synthetic.md",
        help="Markdown out.",
    )
    parser.add_argument(
        "--note",
        default="Shared 2-core machine: other jobs may have run at the same time.",
        help="Free text recorded above the table.",
    )
    tte = parser.add_argument_group(
        "--tte mode", "compare on the frames `registry tte --csv` wrote, instead of synthetic ones"
    )
    tte.add_argument("--tte", type=Path, metavar="DIR", help="Folder of `registry tte --csv`.")
    tte.add_argument("--label", help='Heading of the section, e.g. "100,000 patients".')
    tte.add_argument("--out-md", type=Path, metavar="PATH", help="Markdown section to write.")
    tte.add_argument(
        "--study", type=Path, default=DEFAULT_STUDY, help="The study the export was built with."
    )
    args = parser.parse_args(argv)
    if args.tte is not None and (args.label is None or args.out_md is None):
        parser.error("--tte needs --label and --out-md")
    if args.tte is None and (args.label or args.out_md):
        parser.error("--label and --out-md go with --tte")
    if args.tte is not None and args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run every case at every size and write the results page."""
    args = parse_args(argv)
    if args.tte is not None:
        run_tte(args)
        return
    run_synthetic(args)


if __name__ == "__main__":
    main()
