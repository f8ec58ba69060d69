"""Learning-rate schedules as a multiplier of the peak rate.

* ``cosine`` (the default): linear warm-up, then a half cosine down to a floor at the end of the budget.
* ``wsd`` (warm-up, stable, decay; Hägele et al., "Scaling Laws and Compute-Optimal Training Beyond
  Fixed Training Durations", 2024): linear warm-up over a fixed number of steps, the peak rate until the
  last ``decay_frac`` of the budget, then a "1 - sqrt" cool-down to the floor. Up to the start of its
  cool-down a run does not depend on its total length, so a longer run can continue a shorter one's state
  taken there and be the same model as a long run from scratch (a funnel's promotions,
  ``search.continuation``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from archbench.train_config import TrainConfig


def lr_factor(progress: float, warmup_frac: float, min_lr_frac: float) -> float:
    """Cosine: the multiplier of the peak learning rate at ``progress`` in (0, 1] of the budget.

    Linear from 0 to 1 over the first ``warmup_frac`` of the budget, then a half cosine from 1 down
    to ``min_lr_frac`` at the end.
    """
    p = min(max(progress, 0.0), 1.0)
    if warmup_frac > 0 and p < warmup_frac:
        return p / warmup_frac
    t = (p - warmup_frac) / (1.0 - warmup_frac) if warmup_frac < 1 else 1.0
    return min_lr_frac + (1.0 - min_lr_frac) * 0.5 * (1.0 + math.cos(math.pi * t))


def decay_steps(total: int, decay_frac: float) -> int:
    """WSD: how many of ``total`` steps cool down (at least 1)."""
    return max(1, round(decay_frac * total))


def decay_start(total: int, decay_frac: float) -> int:
    """WSD: the number of steps done when the cool-down begins (where a continuable state is taken)."""
    return total - decay_steps(total, decay_frac)


def wsd_factor(step: int, total: int, warmup_steps: int, decay_frac: float, min_lr_frac: float) -> float:
    """WSD: the multiplier for step ``step`` (0-based) of ``total``; it depends on ``total`` only once
    ``step`` reaches :func:`decay_start`."""
    s = step + 1
    if warmup_steps > 0 and s < warmup_steps:
        return s / warmup_steps
    start = decay_start(total, decay_frac)
    if step < start:
        return 1.0
    t = min((s - start) / decay_steps(total, decay_frac), 1.0)
    return min_lr_frac + (1.0 - min_lr_frac) * (1.0 - math.sqrt(t))


def lr_multiplier(config: TrainConfig, step: int, total: int | None, progress: float) -> float:
    """The learning-rate multiplier of ``config``'s schedule at step ``step`` (0-based) of ``total`` (None: a
    time budget, cosine only, at ``progress``)."""
    if config.schedule == "wsd" and total is not None:
        return wsd_factor(step, total, config.warmup_of(total), config.decay_frac, config.min_lr_frac)
    if config.warmup_steps is not None and total is not None:
        return lr_factor(progress, min(config.warmup_steps / total, 0.999), config.min_lr_frac)
    return lr_factor(progress, config.warmup_frac, config.min_lr_frac)
