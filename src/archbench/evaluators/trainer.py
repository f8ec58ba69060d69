"""The short-budget trainer: AdamW, warm-up + cosine (or WSD), a budget in steps, tokens or seconds.

One job: run the optimisation loop and say how it went (:class:`TrainOutcome`). It is deterministic
given the model's initial weights and the batch generator's seed on CPU; on CUDA it runs under bf16
autocast. A non-finite loss, or one that grows past ``diverge_factor`` times the first loss, stops
training early with ``diverged`` set. Training wall time is recorded because it *is* the budget of a
``seconds=`` run; inference latency is measured elsewhere (``archbench.latency``).

Under the ``wsd`` schedule a run can hand over its state (weights, optimiser moments, the batch and
dropout generators, the step) where its cool-down begins (``on_snapshot``), and a longer run can start
from it (``resume``): on CPU the result is bit-for-bit the longer run from scratch (tests hold it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archbench.errors import ConfigError
from archbench.evaluators.budget import Budget
from archbench.evaluators.schedule import decay_start, lr_multiplier
from archbench.evaluators.task import IGNORE, TaskData
from archbench.train_config import TrainConfig

__all__ = ["TrainConfig", "TrainOutcome", "can_resume", "lr_scales", "make_optimizer", "set_lr", "snapshot", "train"]


@dataclass(frozen=True)
class TrainOutcome:
    """What a training run did: steps and tokens done, wall time, first and last loss, and whether it diverged."""

    steps: int
    tokens: int
    seconds: float
    first_loss: float | None
    last_loss: float | None
    diverged: str | None = None  # why training stopped early; None when it ran its budget
    resumed_steps: int = 0  # steps that came from the state it started from (0: from scratch)

    @property
    def tokens_per_s(self) -> float | None:
        return self.tokens / self.seconds if self.seconds > 0 else None


def lr_scales(model: nn.Module) -> dict[int, float]:
    """Learning-rate multipliers by ``id`` of parameter that ``model``'s residual types ask for (Depth-µP)."""
    from archbench.search_space.model import Trunk

    scales: dict[int, float] = {}
    for module in model.modules():
        if isinstance(module, Trunk):
            scales.update(module.lr_scales())
    return scales


def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on tensors of rank >= 2 only (shared and tied weights once).

    Each group carries ``lr_scale``, the multiplier :func:`set_lr` applies to the schedule's rate: 1, or
    what the residual type asks for its blocks (:meth:`~archbench.search_space.residual.ResidualType.block_lr_scale`).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    scales = lr_scales(model)
    groups: list[dict[str, Any]] = []
    for scale in sorted({1.0, *scales.values()}, reverse=True):
        mine = [p for p in params if scales.get(id(p), 1.0) == scale]
        if scale != 1.0 and not mine:
            continue
        groups += [
            {"params": [p for p in mine if p.ndim >= 2], "weight_decay": config.weight_decay, "lr_scale": scale},
            {"params": [p for p in mine if p.ndim < 2], "weight_decay": 0.0, "lr_scale": scale},
        ]
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, fused=fused)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """The schedule's rate ``lr`` on every group, times the group's ``lr_scale``."""
    for group in opt.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


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
    resume: Mapping[str, Any] | None = None,
    on_snapshot: Callable[[dict[str, Any]], None] | None = None,
) -> TrainOutcome:
    """Train ``model`` (already on ``device``) in place on ``data`` for ``budget``.

    ``resume``: a state :func:`snapshot` took (see :func:`can_resume`); ``on_snapshot`` is called with
    the state where the ``wsd`` cool-down begins (a ``wsd`` run of a step or token budget only)."""
    model.train()
    opt = make_optimizer(model, config, device)
    total = budget.total_steps(batch_size * data.seq_len)
    if config.schedule == "wsd" and total is None:
        raise ConfigError(f"train.schedule=wsd needs a budget of steps or tokens, not {budget}")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" and config.amp else nullcontext()
    watch = _Watch(config.diverge_factor)
    step = tokens = 0
    if resume is not None:
        step, tokens = _restore(resume, model, opt, generator, watch, device)
    resumed, resumed_tokens = step, tokens
    snap_at = decay_start(total, config.decay_frac) if on_snapshot and total and config.schedule == "wsd" else None
    diverged: str | None = None
    start = time.perf_counter()
    while True:
        if step == snap_at:
            diverged = watch.check()
            if diverged:
                break
            state = snapshot(step, tokens, model, opt, generator, watch, device)
            on_snapshot({**state, "schedule": config.label()})  # type: ignore[misc]
        elapsed = time.perf_counter() - start
        if total is not None:
            if step >= total:
                break
            progress = (step + 1) / total
        else:
            if elapsed >= budget.amount:
                break
            progress = max(elapsed / budget.amount, 1e-3)
        set_lr(opt, config.lr * lr_multiplier(config, step, total, progress))
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
    return TrainOutcome(step - resumed, tokens - resumed_tokens, seconds, watch.first, watch.last, diverged, resumed)


def can_resume(state: Mapping[str, Any], config: TrainConfig, total: int | None) -> str | None:
    """Why ``state`` cannot start a ``wsd`` run of ``total`` steps under ``config`` (None: it can)."""
    if config.schedule != "wsd" or total is None:
        return "only a wsd run of a step or token budget continues a state"
    if state.get("schedule") != config.label():
        return f"the state was trained under {state.get('schedule')}, not {config.label()}"
    if int(state["step"]) > decay_start(total, config.decay_frac):
        return f"the state is at step {state['step']}, past the cool-down of {total} steps"
    return None


def snapshot(
    step: int, tokens: int, model: nn.Module, opt: torch.optim.Optimizer, generator: torch.Generator,
    watch: _Watch, device: torch.device,
) -> dict[str, Any]:  # fmt: skip
    """Everything a continued run needs to be the same as one run (on CPU, bit for bit)."""
    return {
        "step": step,
        "tokens": tokens,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "generator": generator.get_state(),
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "watch": (watch.first, watch.last, watch.checked),
    }


def _restore(
    state: Mapping[str, Any], model: nn.Module, opt: torch.optim.Optimizer, generator: torch.Generator,
    watch: _Watch, device: torch.device,
) -> tuple[int, int]:  # fmt: skip
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["rng"])
    if device.type == "cuda" and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    watch.first, watch.last, watch.checked = state["watch"]
    return int(state["step"]), int(state["tokens"])
