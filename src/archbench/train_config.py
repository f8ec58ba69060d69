"""``TrainConfig``: the optimiser and learning-rate schedule of a trial (torch-free, so configs load fast).

Plain settings only: the schedule's arithmetic is :func:`archbench.evaluators.schedule.lr_multiplier`, so that
this module imports nothing from the evaluators (which import it).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

from archbench.errors import ConfigError

SCHEDULES = ("cosine", "wsd")  # see archbench.evaluators.schedule


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and loop settings (the budget is separate)."""

    lr: float = 3e-3
    weight_decay: float = 0.1  # on matrices and embeddings only, not on norms, biases or scalars
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_frac: float = 0.1
    min_lr_frac: float = 0.1
    grad_clip: float | None = 1.0
    batch_size: int | None = None  # None: the task's own batch size
    diverge_factor: float = 4.0  # loss above this times the first loss counts as exploding
    check_every: int = 8  # steps between loss checks (each one synchronises a GPU)
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    schedule: str = "cosine"  # cosine | wsd (warm-up, stable, decay: see evaluators.schedule)
    warmup_steps: int | None = None  # warm-up length in steps (None: warmup_frac of the budget)
    decay_frac: float = 0.2  # wsd: the last fraction of the budget that cools down

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"train.schedule={self.schedule!r}: must be one of {', '.join(SCHEDULES)}")
        steps = self.warmup_steps
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 0):
            raise ConfigError(f"train.warmup_steps={steps!r}: must be a whole number of steps >= 0 (or null)")
        if isinstance(self.decay_frac, bool) or not isinstance(self.decay_frac, int | float):
            raise ConfigError(f"train.decay_frac={self.decay_frac!r}: must be a number in (0, 1)")
        if not 0 < self.decay_frac < 1:
            raise ConfigError(f"train.decay_frac={self.decay_frac!r}: must be in (0, 1)")
        checks = {
            "lr": self.lr > 0 and math.isfinite(self.lr),
            "weight_decay": self.weight_decay >= 0,
            "betas": len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
            "warmup_frac": 0 <= self.warmup_frac < 1,
            "min_lr_frac": 0 <= self.min_lr_frac <= 1,
            "grad_clip": self.grad_clip is None or self.grad_clip > 0,
            "batch_size": self.batch_size is None or self.batch_size >= 1,
            "diverge_factor": self.diverge_factor > 1,
            "check_every": self.check_every >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"train config: {name}={getattr(self, name)!r} is out of range")

    def label(self) -> str:
        """The schedule as rows record it (``train_schedule``): ``cosine`` for the default, else its settings."""
        if self.schedule == "cosine":
            return "cosine" if self.warmup_steps is None else f"cosine(warmup={self.warmup_steps})"
        warmup = self.warmup_frac if self.warmup_steps is None else self.warmup_steps
        return f"wsd(warmup={warmup},decay={self.decay_frac})"

    def recipe(self) -> str:
        """Every setting as canonical JSON (``train_recipe``): two runs with equal recipes train alike."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True, separators=(",", ":"))

    def warmup_of(self, total: int) -> int:
        """Warm-up steps of a run of ``total`` steps."""
        return self.warmup_steps if self.warmup_steps is not None else math.ceil(self.warmup_frac * total)
