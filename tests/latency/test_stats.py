"""Statistics and the adaptive stopping rule, against numpy and hand-made sample sets."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from archbench.latency.stats import StopRule, median_ci_halfwidth, quantile, summarize

finite = st.floats(min_value=0.001, max_value=1e4, allow_nan=False, allow_infinity=False)


@given(st.lists(finite, min_size=1, max_size=60), st.floats(min_value=0, max_value=1))
def test_quantile_matches_numpy(values: list[float], q: float) -> None:
    assert quantile(values, q) == pytest.approx(float(np.quantile(values, q)), rel=1e-9, abs=1e-9)


@given(st.lists(finite, min_size=2, max_size=60))
def test_summary_matches_numpy(values: list[float]) -> None:
    s = summarize(values)
    arr = np.asarray(values)
    assert s.n == len(values)
    assert s.median == pytest.approx(float(np.median(arr)))
    assert s.p90 == pytest.approx(float(np.quantile(arr, 0.9)))
    assert s.iqr == pytest.approx(float(np.quantile(arr, 0.75) - np.quantile(arr, 0.25)), abs=1e-9)
    assert s.cv == pytest.approx(float(arr.std(ddof=1) / arr.mean()), rel=1e-6, abs=1e-12)


def test_summary_of_one_sample_has_zero_spread_and_rejects_nonsense() -> None:
    s = summarize([2.5])
    assert (s.n, s.median, s.p90, s.cv, s.iqr) == (1, 2.5, 2.5, 0.0, 0.0)
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        summarize([1.0, math.nan])


def test_stop_rule_waits_for_min_samples_and_min_time() -> None:
    rule = StopRule(cv_target=0.05, min_samples=5, min_time_s=0.5, time_cap_s=10)
    steady = [1.0] * 4
    assert rule.stop_reason(steady, elapsed_s=1.0) is None  # too few samples
    assert rule.stop_reason([*steady, 1.0], elapsed_s=0.1) is None  # too little time
    assert rule.stop_reason([*steady, 1.0], elapsed_s=0.6) == "converged"


def test_stop_rule_keeps_going_while_noisy_then_hits_the_cap() -> None:
    rule = StopRule(cv_target=0.01, min_samples=3, min_time_s=0, time_cap_s=2.0, robust=False)
    noisy = [1.0, 1.5, 0.7, 1.3, 0.8]
    assert rule.spread(noisy) > 0.01
    assert rule.stop_reason(noisy, elapsed_s=1.0) is None
    assert rule.stop_reason(noisy, elapsed_s=2.0) == "time_cap"
    assert StopRule(min_samples=2, max_samples=5).stop_reason(noisy, elapsed_s=0.0) == "max_samples"


def test_robust_spread_ignores_rare_outliers_but_plain_cv_does_not() -> None:
    samples = [1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 1.01, 0.99, 25.0]  # one descheduled call
    robust, plain = StopRule(robust=True), StopRule(robust=False)
    assert robust.spread(samples) < 0.03
    assert plain.spread(samples) > 1.0
    assert robust.stop_reason(samples, elapsed_s=1.0) == "converged"
    assert plain.stop_reason(samples, elapsed_s=1.0) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cv_target": 0},
        {"median_ci": -0.1},
        {"min_samples": 1},
        {"min_samples": 10, "max_samples": 5},
        {"time_cap_s": 0},
    ],
)
def test_stop_rule_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        StopRule(**kwargs)  # type: ignore[arg-type]


def test_median_ci_covers_the_true_median_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(0)
    true_median, hits, reps = 1.0, 0, 2000
    for _ in range(reps):
        x = rng.lognormal(mean=0.0, sigma=0.1, size=200)  # median exactly 1
        half = median_ci_halfwidth(x.tolist()) * float(np.median(x))
        hits += abs(float(np.median(x)) - true_median) <= half
    assert 0.92 <= hits / reps <= 0.985
    assert median_ci_halfwidth([1.0] * 5) == math.inf  # too few samples to say


def test_median_ci_shrinks_like_one_over_sqrt_n() -> None:
    rng = np.random.default_rng(1)
    small = median_ci_halfwidth(rng.normal(10, 1, 400).tolist())
    large = median_ci_halfwidth(rng.normal(10, 1, 6400).tolist())
    assert 3.0 <= small / large <= 5.5  # sqrt(16) = 4


def test_a_noisy_machine_stops_once_the_median_is_pinned_not_at_the_cap() -> None:
    """8% call-to-call spread never passes a 2% spread target, but ~600 samples pin the median to 1%."""
    rule = StopRule(cv_target=0.02, median_ci=0.01, min_samples=10, min_time_s=0.0, time_cap_s=60)
    rng = np.random.default_rng(2)
    samples = rng.lognormal(0.0, 0.08, 5000).tolist()
    stop = next(n for n in range(10, 5001, 10) if rule.stop_reason(samples[:n], elapsed_s=1.0) is not None)
    assert rule.spread(samples[:stop]) > 0.02
    assert rule.stop_reason(samples[:stop], elapsed_s=1.0) == "median_precise"
    assert 150 <= stop <= 700  # (1.96 * 1.2533 * 0.08 / 0.01)^2 ~ 385
    off = StopRule(cv_target=0.02, median_ci=0, min_samples=10, min_time_s=0.0, time_cap_s=60)
    assert off.stop_reason(samples, elapsed_s=1.0) is None
