"""The short-budget trainer: AdamW, warm-up + cosine, a budget in steps, tokens or seconds.

One job: run the optimisation loop and say how it went (:class:`TrainOutcome`). It is deterministic
given the model's initial weights and the batch generator's seed on CPU; on CUDA it runs under bf16
autocast. A non-finite loss, or one that grows past ``diverge_factor`` times the first loss, stops
training early with ``diverged`` set. Training wall time is recorded because it *is* the budget of a
``seconds=`` run; inference latency is measured elsewhere (``archbench.latency``).
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archbench.errors import ConfigError
from archbench.evaluators.budget import Budget
from archbench.evaluators.schedule import lr_factor
from archbench.evaluators.task import IGNORE, TaskData


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

    def __post_init__(self) -> None:
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


@dataclass(frozen=True)
class TrainOutcome:
    """What a training run did: steps and tokens done, wall time, first and last loss, and whether it diverged."""

    steps: int
    tokens: int
    seconds: float
    first_loss: float | None
    last_loss: float | None
    diverged: str | None = None  # why training stopped early; None when it ran its budget

    @property
    def tokens_per_s(self) -> float | None:
        return self.tokens / self.seconds if self.seconds > 0 else None


def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on tensors of rank >= 2 only (shared and tied weights once)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups: list[dict[str, Any]] = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, fused=fused)


def lm_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy over scored targets; works for (B, S, V) LM and (B, K) classifier logits."""
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE)


class _Watch:
    """Checks pending losses in bulk: one host sync per ``check_every`` steps."""

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self.pending: list[Tensor] = []
        self.first: float | None = None
        self.last: float | None = None
        self.checked = 0

    def check(self) -> str | None:
        if not self.pending:
            return None
        values = torch.stack(self.pending).tolist()
        self.pending.clear()
        for value in values:
            step = self.checked
            self.checked += 1
            if not math.isfinite(value):
                return f"loss became {value} at step {step}"
            if self.first is None:
                self.first = value
            elif value > self.factor * self.first:
                return f"loss exploded to {value:.4g} at step {step} (first loss {self.first:.4g})"
            self.last = value
        return None


def train(
    model: nn.Module,
    data: TaskData,
    budget: Budget,
    config: TrainConfig,
    *,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
) -> TrainOutcome:
    """Train ``model`` (already on ``device``) in place on ``data`` for ``budget``."""
    model.train()
    opt = make_optimizer(model, config, device)
    total = budget.total_steps(batch_size * data.seq_len)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" and config.amp else nullcontext()
    watch = _Watch(config.diverge_factor)
    step = tokens = 0
    diverged: str | None = None
    start = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - start
        if total is not None:
            if step >= total:
                break
            progress = (step + 1) / total
        else:
            if elapsed >= budget.amount:
                break
            progress = max(elapsed / budget.amount, 1e-3)
        lr = config.lr * lr_factor(progress, config.warmup_frac, config.min_lr_frac)
        for group in opt.param_groups:
            group["lr"] = lr
        batch = data.train_batch(generator, batch_size)
        x, y = batch.x.to(device, non_blocking=True), batch.y.to(device, non_blocking=True)
        with autocast:
            logits = model(x)
        loss = lm_loss(logits, y)
        loss.backward()
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        tokens += batch.tokens
        watch.pending.append(loss.detach())
        if step == 1 or step % config.check_every == 0:
            diverged = watch.check()
            if diverged:
                break
    if diverged is None:
        diverged = watch.check()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return TrainOutcome(step, tokens, seconds, watch.first, watch.last, diverged)
