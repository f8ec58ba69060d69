"""Learning-rate schedule: linear warm-up, then cosine decay to a floor, as a function of progress."""

from __future__ import annotations

import math


def lr_factor(progress: float, warmup_frac: float, min_lr_frac: float) -> float:
    """Multiplier of the peak learning rate at ``progress`` in (0, 1] of the budget.

    Linear from 0 to 1 over the first ``warmup_frac`` of the budget, then a half cosine from 1 down
    to ``min_lr_frac`` at the end.
    """
    p = min(max(progress, 0.0), 1.0)
    if warmup_frac > 0 and p < warmup_frac:
        return p / warmup_frac
    t = (p - warmup_frac) / (1.0 - warmup_frac) if warmup_frac < 1 else 1.0
    return min_lr_frac + (1.0 - min_lr_frac) * 0.5 * (1.0 + math.cos(math.pi * t))
