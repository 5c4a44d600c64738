"""The Fine–Gray result of the analysis: a fit that gives no finite estimate is an error
with its reason in results.json and "not estimable" on the page, as the Cox models."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import polars as pl
import pytest

from registry import catalogue
from registry.analysis import curves
from registry.models import competing
from registry.report.format import hr_text
from registry.report.sections import hr_rows


def landmark(events_in_treated: bool, n: int = 200) -> pl.DataFrame:
    """A landmark frame of two arms; events 1 (outcome), 2 (death), 0 censored."""
    rng = np.random.default_rng(3)
    treated = np.arange(n) % 2 == 0
    event = rng.choice([0, 1, 2], size=n, p=[0.5, 0.3, 0.2])
    if not events_in_treated:
        event[treated & (event == 1)] = 0
    return pl.DataFrame(
        {
            "duration_days": rng.integers(1, 1700, size=n),
            "event": event.astype(np.int8),
            "treated": treated,
        }
    )


def fine_gray(frame: pl.DataFrame) -> dict[str, object]:
    """What analyse_outcome writes under outcomes.<name>.fine_gray."""
    return curves.guarded(lambda: curves._fine_gray(frame))


def test_a_fitted_fine_gray_carries_converged() -> None:
    result = fine_gray(landmark(events_in_treated=True))
    assert result["converged"] is True and "error" not in result
    assert 0 < result["hr"] < 10 and result["ci_lower"] < result["hr"] < result["ci_upper"]


def test_no_events_in_one_arm_is_not_estimable_with_the_reason() -> None:
    # before: HR 1.27e-05 (4.8e-06 to 3.4e-05), p 2.7e-112 from a fit that had not converged
    result = fine_gray(landmark(events_in_treated=False))
    assert set(result) == {"error"}
    assert "no events in the treated arm" in str(result["error"])
    assert hr_text(result) == "not estimable"
    failed = {"error": "not fitted"}
    outcome: Any = {
        "cox": {m.key: failed for m in catalogue.MODELS if m.key != "fine_gray"},
        "fine_gray": result,
    }
    row = next(r for r in hr_rows({"adjacent": outcome}, 5) if "Fine" in r["label"])
    assert (row["estimate"], row["n"], row["events"]) == ("not estimable", "–", "–")


def test_a_fit_that_did_not_converge_is_not_estimable(monkeypatch: pytest.MonkeyPatch) -> None:
    real = competing.fit_fine_gray

    def not_converged(*args: object, **kwargs: object) -> competing.FineGrayFit:
        return dataclasses.replace(real(*args, **kwargs), converged=False)  # type: ignore[arg-type]

    monkeypatch.setattr(competing, "fit_fine_gray", not_converged)
    result = fine_gray(landmark(events_in_treated=True))
    assert set(result) == {"error"} and "did not converge" in str(result["error"])


def test_an_empty_arm_is_an_error_not_a_number() -> None:
    frame = landmark(events_in_treated=True).with_columns(pl.lit(False).alias("treated"))
    result = fine_gray(frame)
    assert set(result) == {"error"} and "constant" in str(result["error"])
