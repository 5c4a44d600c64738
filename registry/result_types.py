"""The shape of results.json, typed: every result from the estimators to the report.

TypedDicts over the JSON document rather than dataclasses: the report renders from
results.json (a saved file can be re-rendered), the refresh history reads results of earlier
builds, and small-count protection walks the assembled document by JSON pointer. So the type
is the document itself; mypy checks every builder and every reader against it, and
registry/results.schema.json (generated from these classes by registry/result_schema.py, a
test keeps the two equal) is the contract for outside readers.

Conventions the schema generator follows:
* a key is required unless `NotRequired` (a TypedDict's keys are closed: an unknown or
  renamed key fails validation);
* `dict[Arm, X]` and `dict[Year, X]` (keys from a Literal) hold every key of the Literal;
  `dict[str, X]` any keys;
* `Count` is a count of patients, rows or events: null when withheld (small, or a
  complement of a small one); `Num` an estimate: null where it is not finite;
* a model that could not be fitted is a `ModelError`, `{"error": reason}`: the one thing the
  report calls "not estimable".
"""

from typing import Annotated, Literal, NotRequired, TypedDict, final

Arm = Literal["treated", "untreated"]
Year = Literal["1", "2", "3", "4", "5"]
Instrument = Literal["VAS", "ODI"]
Count = int | None
Num = float | None
INTERNAL = "internal"  # Annotated marker: a key moved elsewhere before results.json is written


@final
class ModelError(TypedDict):
    """A model that could not be fitted, with the reason."""

    error: str


@final
class KMCurve(TypedDict):
    """A Kaplan-Meier curve of one arm: the published (rounded) curve, exact values at years."""

    times_days: list[float]
    survival: list[Num]
    ci_lower: list[Num]
    ci_upper: list[Num]
    at_risk: list[Count]
    events: list[Count]
    censored_times_days: list[float]
    censored: list[Count]
    n: Count
    total_events: Count
    survival_at_years: dict[Year, Num]
    ci_lower_at_years: dict[Year, Num]
    ci_upper_at_years: dict[Year, Num]
    median_days: Num
    median_ci: list[Num]
    withheld_years: list[Year]
    warnings: NotRequired[list[str]]


class PHRow(TypedDict):
    """One term (or GLOBAL) of the Schoenfeld-residual test."""

    term: str
    chisq: Num
    df: float
    p: Num


class Binned(TypedDict):
    """Binned residuals: mean time, mean with 95 % limits, events per bin."""

    time_days: list[Num]
    residual_mean: list[Num]
    residual_lower: list[Num]
    residual_upper: list[Num]
    n: list[Count]


@final
class SchoenfeldSmooth(Binned):
    """Binned scaled Schoenfeld residuals of one term, and its coefficient."""

    beta: Num
    warnings: NotRequired[list[str]]


@final
class PHTest(TypedDict):
    """R's cox.zph table; `violated` when the global p is below 0.05."""

    table: list[PHRow]
    global_p: Num
    violated: bool
    smooth: NotRequired[dict[str, SchoenfeldSmooth]]
    warnings: NotRequired[list[str]]


class Wald(TypedDict):
    """A hazard ratio with its 95 % Wald CI, two-sided p and the SE of the log HR."""

    hr: Num
    ci_lower: Num
    ci_upper: Num
    p: Num
    se: Num


class MIPool(TypedDict):
    """How multiple imputation moved a pooled estimate (Rubin's rules, Barnard-Rubin df)."""

    imputations: int
    df: Num  # degrees of freedom of the t reference distribution
    fmi: Num  # fraction of missing information
    riv: Num  # relative increase in variance due to missingness
    within: Num  # mean of the imputations' variances
    between: Num  # variance of the imputations' estimates


class _CoxFields(Wald):
    n: Count
    events: Count
    robust: bool
    converged: bool
    label: str
    terms: dict[str, Wald]
    n_rows: NotRequired[Count]  # counting-process fits: the (start, stop] rows used
    warnings: NotRequired[list[str]]
    mi: NotRequired[MIPool]  # pooled over imputations: CI and p from t(df)
    # the time-varying adjusted fit carries its PH test until analyse_outcome moves it to
    # the outcome's `ph_test`
    ph_test: NotRequired[Annotated[PHTest | ModelError, INTERNAL]]


@final
class CoxFit(_CoxFields):
    """A Cox model: the treatment term's HR, the model's size and every term."""


class Histogram(TypedDict):
    """Counts per bin and arm (a small count is null)."""

    bin_edges: list[float]
    treated: list[Count]
    untreated: list[Count]


class WeightSummary(TypedDict):
    """Distribution of the stabilised weights and the effective sample size per arm."""

    min: float
    p01: float
    p25: float
    median: float
    p75: float
    p99: float
    max: float
    mean: float
    ess_treated: float
    ess_untreated: float


class BalanceRow(TypedDict):
    """Standardised mean difference of one covariate before and after weighting."""

    covariate: str
    smd_before: Num
    smd_after: Num


@final
class IPTWFit(_CoxFields):
    """The IPT-weighted Cox model with its weights, balance and weighted curves."""

    weights: WeightSummary
    balance: list[BalanceRow]
    max_abs_smd_after: float
    weighted_km: dict[Arm, KMCurve | ModelError]
    ps_histogram: Histogram
    weights_histogram: Histogram


# Functional form: the keys are not identifiers.
Piecewise = TypedDict(
    "Piecewise",
    {"0-1y": CoxFit, "1-5y": CoxFit, "warnings": NotRequired[list[str]]},
)


@final
class CIFCurve(TypedDict):
    """Aalen-Johansen cumulative incidence of one arm (published curve, exact at years)."""

    times_days: list[float]
    cif: list[Num]
    ci_lower: list[Num]
    ci_upper: list[Num]
    at_years: dict[Year, Num]
    withheld_years: list[Year]
    warnings: NotRequired[list[str]]


@final
class ChiSquare(TypedDict):
    """A chi-square test: log-rank or Gray's."""

    statistic: Num
    df: int
    p: Num
    warnings: NotRequired[list[str]]


@final
class FineGray(Wald):
    """Fine-Gray subdistribution HR of treatment."""

    n: Count
    events: Count
    converged: bool
    label: str
    warnings: NotRequired[list[str]]


@final
class RMST(TypedDict):
    """Restricted mean time free of the outcome, landmark to horizon, per arm and difference."""

    tau_days: float
    rmst: dict[Arm, float]
    se: dict[Arm, float]
    difference_days: Num
    ci_lower: Num
    ci_upper: Num
    p: Num
    label: str
    warnings: NotRequired[list[str]]


class CoxModels(TypedDict):
    """Every Cox model of one outcome."""

    unadjusted: CoxFit | ModelError
    adjusted: CoxFit | ModelError
    time_varying: CoxFit | ModelError
    time_varying_adjusted: CoxFit | ModelError
    landmark: CoxFit | ModelError
    iptw: IPTWFit | ModelError
    piecewise: Piecewise | ModelError
    death_cause_specific: CoxFit | ModelError
    # with multiple imputation the keys above hold the pooled fits, these the complete cases'
    adjusted_complete_case: NotRequired[CoxFit | ModelError]
    time_varying_adjusted_complete_case: NotRequired[CoxFit | ModelError]
    iptw_complete_case: NotRequired[IPTWFit | ModelError]
    piecewise_complete_case: NotRequired[Piecewise | ModelError]
    death_cause_specific_complete_case: NotRequired[CoxFit | ModelError]


class CompetingRisks(TypedDict):
    """Cumulative incidence of the outcome and of death per arm, Gray's test, Fine-Gray."""

    cif: dict[Arm, CIFCurve | ModelError]
    cif_death: dict[Arm, CIFCurve | ModelError]
    gray_test: ChiSquare | ModelError
    fine_gray: FineGray | ModelError


class OutcomeResults(TypedDict):
    """Every estimator of the study for one outcome (`outcomes.<name>`)."""

    n: Count
    events: Count
    deaths_first: Count
    km: dict[Arm, KMCurve | ModelError]
    km_landmark: dict[Arm, KMCurve | ModelError]
    logrank: ChiSquare | ModelError
    logrank_stratified_site: ChiSquare | ModelError
    cox: CoxModels
    cif: dict[Arm, CIFCurve | ModelError]
    cif_death: dict[Arm, CIFCurve | ModelError]
    gray_test: ChiSquare | ModelError
    fine_gray: FineGray | ModelError
    ph_test: PHTest | ModelError
    rmst: RMST | ModelError


class AttritionRow(TypedDict):
    """One eligibility step: excluded, remaining and the arms remaining."""

    step: int
    rule: str
    excluded: Count
    remaining: Count
    remaining_treated: Count
    remaining_conservative: Count
    applies_to: str


class PolicyRow(TypedDict):
    """Rows the data policy set aside, of one kind."""

    rule: str
    action: str
    rows: Count
    patients: Count


class MedianFollowUp(TypedDict):
    """Reverse Kaplan-Meier median follow-up with its CI, in days."""

    median: Num
    ci_lower: Num
    ci_upper: Num


class CohortSummary(TypedDict):
    """Cohort size by arm, attrition, data policy, median follow-up."""

    n: Count
    n_treated: Count
    n_untreated: Count
    attrition: list[AttritionRow]
    data_policy: list[PolicyRow]
    median_follow_up_days: NotRequired[MedianFollowUp]  # none on an empty cohort


class Table1Cell(TypedDict):
    """One arm of one Table 1 variable: count and % (binary) or mean and SD."""

    n: Count
    missing: Count
    count: NotRequired[Count]
    percent: NotRequired[Num]
    mean: NotRequired[Num]
    sd: NotRequired[Num]


class Table1Row(TypedDict):
    """One variable of Table 1 by arm, with its standardised mean differences."""

    variable: str
    label: str
    binary: bool
    treated: Table1Cell
    untreated: Table1Cell
    smd_before: Num
    smd_after: Num


class ProChange(TypedDict):
    """Before and after one instrument in one arm: means, SDs, paired change and tests."""

    n: Count
    baseline_mean: Num
    baseline_sd: Num
    followup_mean: Num
    followup_sd: Num
    change_mean: Num
    change_sd: Num
    change_ci_lower: Num
    change_ci_upper: Num
    p_ttest: Num
    p_wilcoxon: Num


class ProByArm(TypedDict, total=False):
    """The arms with assessments."""

    treated: ProChange
    untreated: ProChange


class Trajectory(TypedDict):
    """Mean score of one instrument, arm and visit."""

    instrument: str
    arm: str
    visit: str
    n: Count
    mean: Num
    sd: Num


class BoxStats(TypedDict):
    """Box-plot statistics of one visit (fences at the 5th and 95th centiles)."""

    q1: Num
    median: Num
    q3: Num
    lowerfence: Num
    upperfence: Num
    mean: Num
    sd: Num
    n: Count


class QuantilesByArm(TypedDict, total=False):
    """Box-plot statistics by visit, for the arms with enough patients."""

    treated: dict[str, BoxStats]
    untreated: dict[str, BoxStats]


class ProQuantiles(TypedDict, total=False):
    """Box-plot statistics by instrument (those assessed)."""

    VAS: QuantilesByArm
    ODI: QuantilesByArm


class ProResults(TypedDict):
    """Pain and disability: before/after by instrument and arm, trajectories, box stats."""

    VAS: NotRequired[ProByArm]
    ODI: NotRequired[ProByArm]
    trajectories: list[Trajectory]
    quantiles: ProQuantiles


class BatchRow(TypedDict):
    """The latest ingest batch of one file."""

    file_name: str
    table_name: str | None
    status: str
    rows_read: Count
    rows_inserted: Count
    rows_updated: Count
    rows_unchanged: Count
    rows_quarantined: Count
    batch_id: int
    message: str | None


class QuarantineRow(TypedDict):
    """Quarantined lines of one file, column and rule in its latest batch."""

    file_name: str
    column_name: str
    rule: str
    n_rows: Count


class CheckRow(TypedDict):
    """Violations of one cross-table check."""

    check: str
    violations: Count
    patients: Count


class MissingCovariate(TypedDict):
    """Eligible patients missing one covariate of the adjusted models."""

    covariate: str
    missing: Count


class IngestQuality(TypedDict):
    """What the registry's tables say about the loads: batches, quarantine, checks."""

    batches: list[BatchRow]
    quarantine: list[QuarantineRow]
    checks: list[CheckRow]


class DataQuality(IngestQuality):
    """The data-quality section, with the covariates the adjusted models miss."""

    missing_covariates: list[MissingCovariate]


class ComputeRecord(TypedDict):
    """The Runner of the replicate work: "serial", "processes" or "dask", and its workers."""

    backend: str
    workers: int


class Provenance(TypedDict):
    """What the results were computed from: hashes, table sizes, versions, as_of."""

    study_sha256: str
    data_snapshot_sha256: str
    table_rows: dict[str, int]
    versions: dict[str, str | None]
    as_of: str
    compute: NotRequired[ComputeRecord]  # where the replicate work ran (not what it gave)


class StudySection(TypedDict):
    """The study specification the results were computed for."""

    title: str
    outcomes: list[str]
    primary_outcome: str
    horizon_days: int
    treatment_procedures: list[str]
    landmark_days: int
    covariates: list[str]
    min_cell_count: int


# The target-trial emulation (`target_trial`): the contract between the estimator
# (registry.analysis.target_trial.estimate.emulate), results.json and the report. Years are
# the study's (`[target_trial] years`), as strings: "1", "2", "5" by default. An outcome that
# cannot be estimated keeps every key, with nulls and empty lists.
Strategy = Literal["treat", "no_treat"]
TrialStatus = Literal["estimated", "not_estimable"]
Verdict = Literal["non-inferior", "not shown", "not estimable"]


class ProtocolRow(TypedDict):
    """One element of the target trial: what the trial would specify, how the registry
    emulates it."""

    element: str
    specification: str
    emulation: str


class TrialSettings(TypedDict):
    """The protocol's settings the estimates were computed with."""

    years: list[int]
    replicates: int
    seed: int
    truncation_percentile: float
    weights: Literal["stabilised", "unstabilised"]
    margin: float
    margin_scale: Literal["difference", "ratio"]
    margin_year: int


class TrialCurve(TypedDict):
    """A strategy's weighted cumulative incidence with its bootstrap band (published on a
    grid of whole multiples of the small-cell threshold, see registry/privacy/trial.py)."""

    day: list[float]
    risk: list[Num]
    lower: list[Num]
    upper: list[Num]


class TrialAtRisk(TypedDict):
    """Unweighted clones at risk at whole years."""

    day: list[int]
    n: list[Count]


class StrategyRisks(TypedDict):
    """One strategy: risks and 95 % CIs at the years, the curve, the clones at risk."""

    risk: dict[str, Num]
    ci: dict[str, list[Num] | None]
    curve: TrialCurve
    at_risk: TrialAtRisk


class Contrast(TypedDict):
    """An estimate with its 95 % CI (null where not estimable or withheld)."""

    estimate: Num
    ci_lower: Num
    ci_upper: Num


class NonInferiority(TypedDict):
    """The upper CI bound of the contrast at `at_year` against the margin."""

    margin: float
    scale: Literal["difference", "ratio"]
    at_year: int
    upper_bound: Num
    verdict: Verdict


class EValue(TypedDict):
    """E-values of the risk ratio and of its CI limit nearer 1."""

    point: Num
    ci: Num
    basis: str


class BootstrapRun(TypedDict):
    """The bootstrap of patients behind the CIs."""

    replicates: int
    succeeded: int
    seed: int


class TrialWeightRow(TypedDict):
    """Distribution of the censoring weights in one interval and strategy."""

    strategy: Strategy
    interval: int
    start: int
    stop: int
    mean: Num
    sd: Num
    min: Num
    p99: Num
    max: Num


class Truncation(TypedDict):
    """Where the weights were capped and the share of rows capped."""

    percentile: float
    cap: Num
    share_capped: Num


class CensoredRow(TypedDict):
    """Clones at risk and censored by deviation in one interval and strategy."""

    strategy: Strategy
    interval: int
    start: int
    stop: int
    at_risk: Count
    censored: Count


class TrialBalanceRow(TypedDict):
    """Standardised mean difference of one covariate among the uncensored clones at the
    end of the grace period, before and after weighting."""

    covariate: str
    smd_unweighted: Num
    smd_weighted: Num


class Positivity(TypedDict):
    """Share of patients with a treatment probability within the bounds, and its range."""

    bounds: list[float]
    share_within: Num
    min: Num
    max: Num


class TrialDiagnostics(TypedDict):
    """Weights, truncation, censoring, balance, positivity, and warnings (no counts)."""

    weights: list[TrialWeightRow]
    truncation: Truncation
    censored: list[CensoredRow]
    balance: list[TrialBalanceRow]
    positivity: Positivity
    warnings: list[str]


class TrialCompleteCaseRisks(TypedDict):
    """One strategy's complete-case risks at the years."""

    risk: dict[str, Num]


class TrialCompleteCase(TypedDict):
    """The complete-case point estimates (no bootstrap) beside a multiply imputed trial."""

    status: TrialStatus
    reason: str | None
    strategies: dict[Strategy, TrialCompleteCaseRisks]
    risk_difference: dict[str, Num]
    risk_ratio: dict[str, Num]


class TrialImputation(TypedDict):
    """How a target trial was pooled over multiply imputed covariates."""

    imputations: int
    note: str


class TrialOutcome(TypedDict):
    """The target trial for one outcome (`target_trial.outcomes.<outcome>`)."""

    status: TrialStatus
    reason: str | None
    patients: Count
    strategies: dict[Strategy, StrategyRisks]
    risk_difference: dict[str, Contrast]
    risk_ratio: dict[str, Contrast]
    hazard_ratio: Contrast
    non_inferiority: NonInferiority
    e_value: EValue
    bootstrap: BootstrapRun
    diagnostics: TrialDiagnostics
    # with multiply imputed covariates: how it was pooled, and the complete-case twin
    multiple_imputation: NotRequired[TrialImputation]
    complete_case: NotRequired[TrialCompleteCase]


class TargetTrial(TypedDict):
    """The target-trial emulation: the protocol table, its settings, every outcome."""

    protocol: list[ProtocolRow]
    grace_days: int
    primary_outcome: str
    settings: TrialSettings
    outcomes: dict[str, TrialOutcome]


class MissingVariable(TypedDict):
    """One covariate of the adjusted models: how often it is missing and how it was imputed."""

    covariate: str
    missing: Count
    percent: Num
    imputed: bool
    method: Literal["pmm", "logreg"] | None
    predictors: list[str]


class MissingPattern(TypedDict):
    """Patients missing exactly these covariates (empty: the complete cases)."""

    missing: list[str]
    count: Count


class FMIRow(TypedDict):
    """The fraction of missing information of one pooled estimate."""

    outcome: str
    model: str
    term: str
    estimate: Num  # the pooled log hazard ratio
    fmi: Num
    riv: Num
    df: Num


class Chains(TypedDict):
    """Mean and SD of one variable's imputed values after each iteration, per imputation."""

    mean: list[list[Num]]
    sd: list[list[Num]]


class Distribution(TypedDict):
    """Observed and imputed values of one variable as shares per bin (a small bin is null)."""

    binary: bool
    edges: list[float] | None  # bin edges; binary: null, the bins are false and true
    observed: list[Num]
    imputed: list[Num]


class MissingDataSection(TypedDict):
    """How missing covariates were handled (`missing_data`)."""

    method: Literal["multiple_imputation", "complete_case"]
    imputations: int  # completed datasets; 0 when nothing was imputed
    iterations: int
    seed: int
    donors: int
    note: str | None  # why nothing was imputed, when so
    n: Count
    complete_cases: Count
    variables: list[MissingVariable]
    patterns: list[MissingPattern]
    fmi: list[FMIRow]
    chains: dict[str, Chains] | None  # null when no imputation was done or too few missing
    distributions: dict[str, Distribution]
    notes: list[str]  # the engine's: a variable it could not impute, and why


class Results(TypedDict):
    """results.json."""

    study: StudySection
    cohort: CohortSummary
    table1: list[Table1Row]
    outcomes: dict[str, OutcomeResults]
    pro: ProResults
    data_quality: DataQuality
    provenance: Provenance
    small_cell_threshold: int
    target_trial: TargetTrial | None  # null when the study's [target_trial] is disabled
    missing_data: MissingDataSection
    withheld: NotRequired[list[str]]  # added by protect(): JSON pointers of complements


# The models with a hazard ratio of treatment: the Cox models but the piecewise one (two
# HRs), and Fine-Gray, which sits beside `cox` in an outcome.
FitName = Literal[
    "time_varying_adjusted",
    "time_varying",
    "landmark",
    "iptw",
    "adjusted",
    "unadjusted",
    "fine_gray",
    "death_cause_specific",
]
HRFit = CoxFit | IPTWFit | FineGray


def hr_fit(outcome: OutcomeResults, name: FitName) -> HRFit | ModelError:
    """One model with a hazard ratio of treatment, by name."""
    if name == "fine_gray":
        return outcome["fine_gray"]
    return outcome["cox"][name]
