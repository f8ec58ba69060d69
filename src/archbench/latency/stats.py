"""Summary statistics of timing samples and the adaptive stopping rule. Pure Python, no torch."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) with linear interpolation between order statistics (numpy's default)."""
    if not values:
        raise ValueError("quantile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q={q}: must be in [0, 1]")
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class Summary:
    """Median, p90, spread and count of a set of samples (same unit as the samples)."""

    n: int
    median: float
    p90: float
    mean: float
    std: float  # sample standard deviation (n - 1); 0 for one sample
    iqr: float  # p75 - p25
    cv: float  # std / mean; 0 for one sample

    @property
    def iqr_over_median(self) -> float:
        return self.iqr / self.median if self.median > 0 else math.inf


def summarize(samples: Sequence[float]) -> Summary:
    """Summary of ``samples`` (at least one, all finite)."""
    if not samples:
        raise ValueError("no samples to summarize")
    if not all(math.isfinite(s) for s in samples):
        raise ValueError("samples must be finite")
    mean = statistics.fmean(samples)
    std = statistics.stdev(samples) if len(samples) > 1 else 0.0
    return Summary(
        n=len(samples),
        median=statistics.median(samples),
        p90=quantile(samples, 0.9),
        mean=mean,
        std=std,
        iqr=quantile(samples, 0.75) - quantile(samples, 0.25),
        cv=std / mean if mean > 0 else (0.0 if std == 0 else math.inf),
    )


def median_ci_halfwidth(samples: Sequence[float], z: float = 1.96) -> float:
    """Half the width of the distribution-free confidence interval of the median (order statistics
    ``n/2 -+ z*sqrt(n)/2``, about 95% for ``z=1.96``), relative to the median; inf below 6 samples."""
    n = len(samples)
    if n < 6:
        return math.inf
    ordered = sorted(samples)
    half = z * math.sqrt(n) / 2
    lo = max(0, math.floor(n / 2 - half) - 1)  # 1-based rank floor(n/2 - half), as a 0-based index
    hi = min(n - 1, math.ceil(n / 2 + half) - 1)
    med = statistics.median(ordered)
    return (ordered[hi] - ordered[lo]) / 2 / med if med > 0 else math.inf


@dataclass(frozen=True)
class StopRule:
    """When adaptive repetition stops (optimum-benchmark's shape: a minimum count *and* a minimum time).

    Repetition stops as soon as at least ``min_samples`` samples and ``min_time_s`` seconds are in and
    either the spread is under ``cv_target`` (``"converged"``) or the median is known to within
    ``median_ci`` (``"median_precise"``: the half-width of its ~95% distribution-free confidence
    interval, relative to the median), or when ``time_cap_s`` or ``max_samples`` is reached first.
    The spread is the CV of the samples, made robust to rare outliers (another tenant, a page fault):
    ``robust=True`` judges it on ``1.4826 * MAD / median`` instead, the CV a normal distribution with
    that MAD would have.

    The second test exists because a spread is a property of the machine, not of the sample count: on a
    shared CPU whose calls vary by 5-10% the spread never gets under 2%, and a spread-only rule runs
    every measurement to the time cap, while the median (the number reported) is pinned to 1% after a
    few hundred calls. ``median_ci=0`` turns the second test off.
    """

    cv_target: float = 0.02
    median_ci: float = 0.01
    min_samples: int = 10
    max_samples: int = 10_000
    min_time_s: float = 0.2
    time_cap_s: float = 10.0
    robust: bool = True

    def __post_init__(self) -> None:
        if not self.cv_target > 0:
            raise ValueError(f"cv_target={self.cv_target}: must be > 0")
        if not self.median_ci >= 0:
            raise ValueError(f"median_ci={self.median_ci}: must be >= 0 (0 turns it off)")
        if self.min_samples < 2 or self.max_samples < self.min_samples:
            raise ValueError(f"need 2 <= min_samples <= max_samples, got {self.min_samples}, {self.max_samples}")
        if self.time_cap_s <= 0 or self.min_time_s < 0:
            raise ValueError("time_cap_s must be > 0 and min_time_s >= 0")

    def spread(self, samples: Sequence[float]) -> float:
        """The spread judged against ``cv_target``."""
        if len(samples) < 2:
            return math.inf
        if not self.robust:
            return summarize(samples).cv
        med = statistics.median(samples)
        mad = statistics.median(abs(s - med) for s in samples)
        return 1.4826 * mad / med if med > 0 else math.inf

    def stop_reason(self, samples: Sequence[float], elapsed_s: float) -> str | None:
        """Why to stop now (``"converged"``, ``"median_precise"``, ``"time_cap"``, ``"max_samples"``), or
        None to go on."""
        n = len(samples)
        if n >= self.max_samples:
            return "max_samples"
        if elapsed_s >= self.time_cap_s and n >= 2:
            return "time_cap"
        if n < self.min_samples or elapsed_s < self.min_time_s:
            return None
        if self.spread(samples) <= self.cv_target:
            return "converged"
        if self.median_ci > 0 and median_ci_halfwidth(samples) <= self.median_ci:
            return "median_precise"
        return None
