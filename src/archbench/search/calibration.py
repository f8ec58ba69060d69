"""Calibration of a multi-fidelity funnel: each lower rung's quality put on the top rung's scale.

``search.calibrate`` (on by default) tells the strategy a stopped candidate's quality on the top rung's
scale: calibrated, the funnel reached single fidelity's final hypervolume in a median 0.40x of single
fidelity's time over 6 seeds (``benchmarks/results/multi_fidelity_cpu_480s_calibrated_w32_vs_default_6seeds.txt``).

Without it (``search.calibrate=false``), every promoted candidate is told a top-rung loss and every
stopped one a short run's, which is worse for any shape (at ``steps=40`` under a 32-step warm-up: 2.7-3.6
against 1.9-2.5 at the top), so whatever the funnel promoted looks better to the strategy than anything it
stopped, and the search follows the promotions' bias: in a 420 s study on ``charlm`` 87 of 118 candidates
and 25 of 27 top rows were one-layer models (``benchmarks/results/calibrate_pilot_cpu.txt``).

Calibrated, each quality objective of a lower rung goes through an affine map fitted by least squares on
the trials that finished both that rung and the top (:class:`RungMap`; after :data:`MIN_PAIRS` of them; a
slope that is not positive becomes a plain shift), so a stopped candidate is told about what it would have
scored at the top. Cost objectives are measured, not trained, and are told as measured. Promotion is
unchanged: a positive slope keeps each rung's ranking. The maps at the end of a search are
``SearchOutcome.calibration`` and are printed with the front.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_PAIRS = 5  # trials that finished both rungs before a rung's values are put on the top rung's scale


@dataclass(frozen=True)
class RungMap:
    """One quality objective's value at the top rung as an affine function of its value at ``rung``, fitted
    by least squares over the ``n`` trials that finished both (``r2``: the fit's coefficient of
    determination on them). The slope is positive, so a rung's own ranking is kept."""

    rung: int
    objective: str
    n: int
    slope: float
    intercept: float
    r2: float | None

    def __call__(self, value: float) -> float:
        return self.intercept + self.slope * value


def fit_rung_map(rung: int, objective: str, pairs: Sequence[tuple[float, float]]) -> RungMap | None:
    """``(value at rung, value at the top)`` pairs -> the map, or None below :data:`MIN_PAIRS` pairs.

    Where the least-squares slope is not positive (the rung's values carry no ranking here, or noise
    reverses it) the map only shifts: slope 1, intercept the mean difference; it never reverses a ranking."""
    if len(pairs) < MIN_PAIRS:
        return None
    x, y = np.array(pairs, dtype=float).T
    slope, intercept = np.polyfit(x, y, 1) if np.ptp(x) > 0 else (0.0, 0.0)
    if not slope > 0:
        slope, intercept = 1.0, float(np.mean(y - x))
    resid = y - (intercept + slope * x)
    spread = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / spread if spread > 0 else None
    return RungMap(rung, objective, len(pairs), float(slope), float(intercept), r2)
