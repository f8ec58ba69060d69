"""The bridge to ``archbench.latency``: evaluators never time inference themselves, they ask it.

:func:`measure` returns the cost metrics of the deployed model (latency, energy, memory, size, FLOPs)
with their null reasons and the hardware fingerprint, or, when measurement is skipped or fails,
the same metric names as None with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from archbench.search_space.architecture import Architecture
from archbench.trial import METRICS

QUALITY_METRICS = ("val_loss", "val_bpb", "val_acc", "val_loss_quant", "val_bpb_quant", "val_acc_quant")
TRAINING_METRICS = ("train_time_s", "train_tokens_per_s")
COST_METRICS = tuple(m for m in METRICS if m not in QUALITY_METRICS and m not in TRAINING_METRICS)


@dataclass(frozen=True)
class Measured:
    """Cost metrics (None where not measured), why each None is None, and the hardware fingerprint."""

    metrics: Mapping[str, float | int | None]
    null_reasons: Mapping[str, str]
    hardware: Mapping[str, Any] = field(default_factory=dict)


def one_line(exc: BaseException, limit: int = 400) -> str:
    """``Type: message`` on one line, shortened to ``limit`` characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def not_measured(reason: str, hardware: Mapping[str, Any] | None = None) -> Measured:
    return Measured(dict.fromkeys(COST_METRICS), dict.fromkeys(COST_METRICS, reason), dict(hardware or {}))


def fingerprint(device: torch.device) -> dict[str, Any]:
    """The hardware fingerprint from ``archbench.latency`` (empty if it cannot be taken)."""
    try:
        from archbench.latency import hardware_fingerprint

        return dict(hardware_fingerprint(device))
    except Exception:  # the fingerprint is best effort; the row still says what it can
        return {}


def measure(
    model: nn.Module | None, arch: Architecture, device: torch.device, enabled: bool, why_not: str = ""
) -> Measured:
    """Cost metrics of the deployed ``model`` from ``archbench.latency.measure_model``; never raises."""
    if not enabled:
        return not_measured("not measured: measure=False", fingerprint(device))
    if model is None:
        return not_measured(f"not measured: {why_not or 'no deployed model'}", fingerprint(device))
    try:
        from archbench.latency import measure_model
    except ImportError as exc:
        return not_measured(f"not measured: archbench.latency unavailable ({one_line(exc)})", fingerprint(device))
    try:
        m = measure_model(model, arch=arch, device=device)
    except Exception as exc:
        if isinstance(exc, torch.OutOfMemoryError) and torch.cuda.is_available():
            torch.cuda.empty_cache()
        return not_measured(f"measurement failed: {one_line(exc)}", fingerprint(device))
    metrics = dict(m.metrics)
    reasons = {k: v for k, v in dict(m.null_reasons).items() if metrics.get(k) is None}
    for name, value in metrics.items():
        if isinstance(value, float) and not math.isfinite(value):
            metrics[name] = None
            reasons[name] = f"archbench.latency reported {value}"
    for name in COST_METRICS:
        if metrics.get(name) is None:
            metrics[name] = None
            reasons.setdefault(name, "not reported by archbench.latency")
    return Measured(metrics, reasons, dict(m.hardware))
