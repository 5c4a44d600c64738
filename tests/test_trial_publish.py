"""The target trial's block under the small-cell rules (registry/privacy/trial.py through
registry/privacy/protect.py): hand-made blocks and random ones."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.analysis.results import suppress_small
from registry.analysis.target_trial.result import not_estimable
from registry.privacy.protect import protect
from registry.trial_protocol import Protocol

K = 5
STARTS = (0, 28, 56, 300, 400, 700, 800)  # interval starts; 365 and 730 fall inside two
YEAR_DAYS = (0, 365, 730)
STRATEGIES = ("treat", "no_treat")
Json = dict[str, Any]


def publish(block: Json, k: int = K) -> Json:
    """The block as results.json publishes it (protect, then the plain small-count pass)."""
    results = {"cohort": {"attrition": []}, "outcomes": {}, "table1": [], "data_quality": {},
               "pro": {}, "target_trial": {"outcomes": {"adjacent": block}}}  # fmt: skip
    out = suppress_small(protect(results, k), k)
    return dict(out["target_trial"]["outcomes"]["adjacent"])


def estimated_block(patients: int, flows: dict[str, list[tuple[int, int]]],
                    yearly: dict[str, list[int]], curve: list[tuple[float, float]]) -> Json:  # fmt: skip
    """An estimated block: per strategy the (censored, other exits) of each interval, the
    clones at risk at 365 and 730 days, and one curve (day, risk) for both strategies."""
    block: Json = dict(not_estimable("x", Protocol(years=(1, 2), margin_year=2), patients=patients))
    block.update(status="estimated", reason=None)
    rows = []
    for strategy in STRATEGIES:
        at_risk = patients
        for i, (start, (censored, other)) in enumerate(zip(STARTS, flows[strategy], strict=True)):
            stop = STARTS[i + 1] if i + 1 < len(STARTS) else 1000
            rows.append({"strategy": strategy, "interval": i, "start": start, "stop": stop,
                         "at_risk": at_risk, "censored": censored})  # fmt: skip
            at_risk -= censored + other
        risks = block["strategies"][strategy]
        risks["at_risk"] = {"day": list(YEAR_DAYS), "n": [patients, *yearly[strategy]]}
        days = [d for d, _ in curve]
        values = [r for _, r in curve]
        risks["curve"] = {"day": days, "risk": values, "lower": [v * 0.8 for v in values],
                          "upper": [min(1.0, v * 1.2 + 0.01) for v in values]}  # fmt: skip
        for year, day in (("1", 365), ("2", 730)):
            risk = max([r for d, r in curve if d <= day], default=0.0)
            risks["risk"][year] = risk
            risks["ci"][year] = [risk * 0.8, risk * 1.2 + 0.01]
    for year in ("1", "2"):
        a, b = (block["strategies"][s]["risk"][year] for s in STRATEGIES)
        block["risk_difference"][year] = {"estimate": a - b, "ci_lower": -0.1, "ci_upper": 0.1}
        block["risk_ratio"][year] = {"estimate": a / b if b else None, "ci_lower": 0.5,
                                     "ci_upper": 2.0}  # fmt: skip
    block["non_inferiority"].update(upper_bound=0.03, verdict="non-inferior")
    block["e_value"].update(point=1.5, ci=1.0)
    block["diagnostics"]["censored"] = rows
    return block


@st.composite
def blocks(draw: st.DrawFn) -> Json:
    """Random consistent blocks: flows that never take more clones than are at risk."""
    patients = draw(st.integers(0, 80))
    flows, yearly = {}, {}
    for strategy in STRATEGIES:
        at_risk, steps, at = patients, [], {}
        for start in STARTS:
            at[start] = at_risk
            censored = draw(st.integers(0, at_risk))
            other = draw(st.integers(0, at_risk - censored))
            steps.append((censored, other))
            at_risk -= censored + other
        flows[strategy] = steps
        # 365 lies in (300, 400], 730 in (700, 800]: between those intervals' at-risk counts
        yearly[strategy] = [draw(st.integers(at[400], at[300])),
                            draw(st.integers(at[800], at[700]))]  # fmt: skip
    increments = draw(st.lists(st.floats(0, 0.05), min_size=1, max_size=12))
    days = sorted(draw(st.lists(st.integers(1, 800), min_size=len(increments),
                                max_size=len(increments), unique=True)))  # fmt: skip
    total, curve = 0.0, [(0.0, 0.0)]
    for day, step in zip(days, increments, strict=True):
        total += step
        curve.append((float(day), total))
    return estimated_block(patients, flows, yearly, curve)


def counts(block: Json) -> list[tuple[tuple[Any, ...], Any]]:
    """Every count of a block with where it sits."""
    found: list[tuple[tuple[Any, ...], Any]] = [(("patients",), block["patients"])]
    for strategy in STRATEGIES:
        for i, n in enumerate(block["strategies"][strategy]["at_risk"]["n"]):
            found.append(((strategy, "at_risk", i), n))
    for j, row in enumerate(block["diagnostics"]["censored"]):
        found += [(("censored", j, "at_risk"), row["at_risk"]),
                  (("censored", j, "censored"), row["censored"])]  # fmt: skip
    return found


def leaks(raw: Json, pub: Json) -> list[str]:
    """Every small count a reader gets back from the published block: shown directly, or as
    a total minus its published parts (an interval's clones at risk = censored + next
    interval's + unpublished exits; a yearly number at risk between two intervals')."""
    found = [f"{where}={v}" for where, v in counts(pub) if type(v) is int and 0 < v < K]
    rows_raw, rows_pub = raw["diagnostics"]["censored"], pub["diagnostics"]["censored"]
    for strategy in STRATEGIES:
        index = [j for j, r in enumerate(rows_raw) if r["strategy"] == strategy]
        for a, b in zip(index, [*index[1:], None], strict=True):
            r, p = rows_raw[a], rows_pub[a] if rows_pub else None
            if p is None or p["at_risk"] is None:
                continue
            nxt_raw = rows_raw[b]["at_risk"] if b is not None else 0
            nxt_pub = rows_pub[b]["at_risk"] if b is not None else 0
            hidden = r["at_risk"] - sum(
                true for true, shown in ((r["censored"], p["censored"]), (nxt_raw, nxt_pub))
                if shown is not None)  # fmt: skip
            if 0 < hidden < K:
                found.append(f"{strategy} interval {r['start']}: hidden part {hidden}")
        table_raw = raw["strategies"][strategy]["at_risk"]
        table_pub = pub["strategies"][strategy]["at_risk"]
        for i, day in enumerate(table_pub["day"]):
            shown = table_pub["n"][i]
            around = [rows_pub[j]["at_risk"] for j in index if rows_raw[j]["start"] in
                      {300, 400, 700, 800} and abs(rows_raw[j]["start"] - day) < 100]  # fmt: skip
            truths = [rows_raw[j]["at_risk"] for j in index if rows_raw[j]["start"] in
                      {300, 400, 700, 800} and abs(rows_raw[j]["start"] - day) < 100]  # fmt: skip
            for other, true in zip(around, truths, strict=True):
                gap = abs(true - table_raw["n"][i])
                if shown is not None and other is not None and 0 < gap < K:
                    found.append(f"{strategy} day {day}: {gap} between year and interval")
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(block=blocks())
def test_no_small_count_survives_or_can_be_worked_back_from_totals(block: Json) -> None:
    pub = publish(copy.deepcopy(block))
    assert leaks(block, pub) == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(block=blocks())
def test_published_risks_are_rounded_up_and_contrasts_never_give_a_withheld_risk_back(
    block: Json,
) -> None:
    pub = publish(copy.deepcopy(block))
    if 0 < block["patients"] < K:
        return  # withheld whole (test below)
    for strategy in STRATEGIES:
        exact, shown = block["strategies"][strategy], pub["strategies"][strategy]
        curve = dict(zip(exact["curve"]["day"], exact["curve"]["risk"], strict=True))
        for day, risk in zip(shown["curve"]["day"], shown["curve"]["risk"], strict=True):
            # rounding up to multiples of k event-equivalents forgives 1e-9 of one (float
            # noise on an exact multiple): a risk can come out up to 1e-9 k / at-risk low
            assert risk is not None and risk >= curve[day] - 1e-9 * K
        limit = next((d for d, n in zip(shown["at_risk"]["day"], shown["at_risk"]["n"],
                                        strict=True) if not n), None)  # fmt: skip
        if limit is not None:
            assert all(d <= limit for d in shown["curve"]["day"])
        for year, risk in shown["risk"].items():
            assert risk in (None, exact["risk"][year])
            if risk is None:
                assert shown["ci"][year] is None
    for year in ("1", "2"):
        if any(pub["strategies"][s]["risk"][year] is None for s in STRATEGIES):
            assert pub["risk_difference"][year]["estimate"] is None
            assert pub["risk_ratio"][year]["estimate"] is None


def test_a_risk_reached_by_fewer_than_k_events_is_withheld_with_its_contrasts() -> None:
    flows = {s: [(0, 0)] * len(STARTS) for s in STRATEGIES}
    # 100 at risk throughout: 0.02 at 1 year is 2 events (withheld), 0.10 at 2 years 8 more
    block = estimated_block(100, flows, {s: [100, 100] for s in STRATEGIES},
                            [(0.0, 0.0), (100.0, 0.02), (500.0, 0.10)])  # fmt: skip
    pub = publish(block)
    assert pub["strategies"]["treat"]["risk"] == {"1": None, "2": 0.10}
    assert pub["strategies"]["treat"]["ci"]["1"] is None
    assert pub["risk_difference"]["1"]["estimate"] is None
    assert pub["risk_difference"]["2"]["estimate"] == 0.0
    assert pub["non_inferiority"]["upper_bound"] == 0.03  # judged at year 2, shown
    # the curve in steps of 5 event-equivalents out of 100: 0.02 -> 0.05, 0.10 stays
    assert pub["strategies"]["treat"]["curve"]["risk"] == [0.0, 0.05, 0.10]


def test_the_curve_stops_where_the_number_at_risk_is_withheld() -> None:
    flows = {s: [(0, 0), (0, 0), (0, 0), (0, 0), (0, 0), (0, 0), (0, 0)] for s in STRATEGIES}
    block = estimated_block(50, flows, {s: [50, 3] for s in STRATEGIES},
                            [(0.0, 0.0), (100.0, 0.2), (600.0, 0.4)])  # fmt: skip
    pub = publish(block)
    treat = pub["strategies"]["treat"]
    assert treat["at_risk"]["n"][2] is None
    assert treat["curve"]["day"] == [0.0, 100.0]
    assert treat["risk"]["2"] is None and pub["risk_ratio"]["2"]["estimate"] is None


def test_an_outcome_with_fewer_than_k_eligible_patients_is_withheld_whole() -> None:
    flows = {s: [(1, 0)] + [(0, 0)] * (len(STARTS) - 1) for s in STRATEGIES}
    block = estimated_block(4, flows, {s: [3, 3] for s in STRATEGIES}, [(0.0, 0.0), (9.0, 0.25)])
    block["diagnostics"]["warnings"] = ["weights above 10 in 3 clones"]
    pub = publish(block)
    assert pub["status"] == "not_estimable" and pub["reason"] is not None
    assert pub["reason"].startswith(f"fewer than {K} eligible patients")
    assert set(pub) == set(block)  # every key kept
    assert pub["patients"] is None and pub["diagnostics"]["censored"] == []
    assert pub["strategies"]["treat"]["curve"]["risk"] == []
    assert pub["strategies"]["treat"]["risk"] == {"1": None, "2": None}
    assert pub["risk_difference"]["1"]["estimate"] is None
    assert pub["e_value"]["point"] is None and pub["diagnostics"]["warnings"] == []


def test_reasons_and_warnings_are_published_without_counts() -> None:
    block = dict(not_estimable("too few patients (12 eligible, at least 20 needed)", Protocol(),
                               patients=12))  # fmt: skip
    block["diagnostics"]["warnings"] = ["3 clones have a weight above 10; 2 events in week 1",
                                        "nobody was treated within the 56-day grace period"]  # fmt: skip
    pub = publish(block)
    assert pub["reason"] == "too few patients (n eligible, at least 20 needed)"
    assert pub["diagnostics"]["warnings"] == [
        "n clones have a weight above 10; n events in week 1",
        "nobody was treated within the 56-day grace period",
    ]
    assert pub["patients"] == 12


def test_a_positivity_share_that_gives_a_small_count_back_is_withheld() -> None:
    block = dict(not_estimable("x", Protocol(), patients=100))
    block["diagnostics"]["positivity"]["share_within"] = 0.98  # 2 patients outside the bounds
    assert publish(block)["diagnostics"]["positivity"]["share_within"] is None
    block["diagnostics"]["positivity"]["share_within"] = 0.90
    assert publish(block)["diagnostics"]["positivity"]["share_within"] == 0.90


def test_eligible_patients_hidden_with_their_clones_at_day_zero() -> None:
    flows = {s: [(0, 0)] * len(STARTS) for s in STRATEGIES}
    block = estimated_block(30, flows, {s: [30, 30] for s in STRATEGIES}, [(0.0, 0.0)])
    results = {"cohort": {"attrition": []}, "table1": [], "data_quality": {}, "pro": {},
               "outcomes": {"adjacent": {"n": 33, "events": 0, "deaths_first": 0}},
               "target_trial": {"outcomes": {"adjacent": block}}}  # fmt: skip
    out = protect(results, K)  # 33 - 30 = 3 patients missing a covariate: one side hidden
    published = out["target_trial"]["outcomes"]["adjacent"]
    assert out["outcomes"]["adjacent"]["n"] is None or published["patients"] is None
    if published["patients"] is None:
        assert published["strategies"]["treat"]["at_risk"]["n"][0] is None
        assert published["diagnostics"]["censored"][0]["at_risk"] is None


def test_every_virtual_count_has_one_value_whatever_strategies_share() -> None:
    """The day-0 cell (the eligible patients) is shared by both strategies; the counts that
    leave between it and each strategy's next row are that strategy's own virtual cells (a
    shared name once took the last strategy's value and made the solver hide the cohort)."""
    from registry.privacy.suppression import Cells
    from registry.privacy.trial import trial_cells

    flows = {"treat": [(0, 30)] + [(0, 1)] * 6, "no_treat": [(0, 44)] + [(0, 1)] * 6}
    block = estimated_block(400, flows, {"treat": [300, 250], "no_treat": [290, 240]},
                            [(0, 0.0), (365, 0.1)])  # fmt: skip
    seen: dict[str, list[int]] = {}
    cells = Cells(K)
    original = cells.virtual

    def record(name: str, value: int) -> str:
        seen.setdefault(name, []).append(value)
        return original(name, value)

    cells.virtual = record  # type: ignore[method-assign]
    trial_cells(cells, {"target_trial": {"outcomes": {"adjacent": block}}})
    assert seen and all(len(values) == 1 for values in seen.values()), seen
    for total, parts in cells.relations:  # every relation holds with the true values
        assert cells.cells[total].value == sum(cells.cells[p].value for p in parts)


def test_the_estimators_event_counts_decide_which_risks_are_shown_and_are_never_published() -> None:
    """With the estimator's unweighted outcome events by year (`_events`) a risk is withheld
    exactly when fewer than k events separate it from the last one shown; the key itself
    is consumed by publication, whatever happens to the block."""
    flows = {s: [(0, 1)] * 7 for s in STRATEGIES}
    block = estimated_block(400, flows, {"treat": [300, 20], "no_treat": [300, 20]},
                            [(0, 0.0), (365, 0.10), (730, 0.12)])  # fmt: skip
    # the bound (0.02 x 20 clones = 0.4 event-equivalents) would withhold year 2 ...
    assert publish(copy.deepcopy(block))["strategies"]["treat"]["risk"]["2"] is None
    many = copy.deepcopy(block)
    for s in STRATEGIES:  # ... but 40 events were seen between the years
        many["strategies"][s]["_events"] = {"1": 40, "2": 80}
    shown = publish(many)
    assert shown["strategies"]["treat"]["risk"]["2"] == pytest.approx(0.12)
    assert shown["risk_difference"]["2"]["estimate"] is not None
    few = copy.deepcopy(block)
    for s in STRATEGIES:
        few["strategies"][s]["_events"] = {"1": 40, "2": 40 + K - 1}
    assert publish(few)["strategies"]["treat"]["risk"]["2"] is None
    small = copy.deepcopy(many)
    small["patients"] = K - 1
    for published in (shown, publish(few), publish(small)):
        assert "_events" not in repr(published)
