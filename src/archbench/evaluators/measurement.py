"""The bridge to ``archbench.latency``: evaluators never time inference themselves, they ask it.

:func:`measure` returns the cost metrics of the deployed model (latency, energy, memory, size, FLOPs)
with their null reasons and the hardware fingerprint, or, when measurement is skipped or fails,
the same metric names as None with the reason. The modes and shape come from a
:class:`~archbench.deploy.Deploy` (default: prefill only).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from archbench.deploy import MODE_METRICS, Deploy
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
    model: nn.Module | None,
    arch: Architecture,
    device: torch.device,
    enabled: bool,
    why_not: str = "",
    deploy: Deploy | None = None,
) -> Measured:
    """Cost metrics of the deployed ``model`` in every mode of ``deploy`` (default: prefill only, eager,
    batch 1 at ``max_seq_len``) from ``archbench.latency``; never raises."""
    deploy = deploy or Deploy()
    if not enabled:
        return not_measured("not measured: measure=False", fingerprint(device))
    if model is None:
        return not_measured(f"not measured: {why_not or 'no deployed model'}", fingerprint(device))
    try:
        from archbench.latency import measure_model
    except ImportError as exc:
        return not_measured(f"not measured: archbench.latency unavailable ({one_line(exc)})", fingerprint(device))
    try:
        m = measure_model(
            model, arch=arch, device=device, batch=deploy.batch, seq_len=deploy.prompt,
            compile=deploy.exec_mode == "compile",
        )  # fmt: skip
    except Exception as exc:
        if isinstance(exc, torch.OutOfMemoryError) and torch.cuda.is_available():
            torch.cuda.empty_cache()
        return not_measured(f"measurement failed: {one_line(exc)}", fingerprint(device))
    metrics = dict(m.metrics)
    reasons = {k: v for k, v in dict(m.null_reasons).items() if metrics.get(k) is None}
    hardware = {**m.hardware, "deploy": deploy.label(), "measure_mode": "+".join(deploy.modes)}
    for mode, keys in MODE_METRICS.items():
        if mode not in deploy.modes:
            for key in keys:
                if key not in metrics:
                    metrics[key] = None
                    reasons[key] = f"not measured: deploy.modes has no {mode} (ask for it as an objective)"
            continue
        extra, extra_reasons, extra_hw = _mode(mode, model, arch, device, deploy)
        if mode == "generate" and "decode" in deploy.modes:  # the decode cache at its context wins
            extra.pop("kv_cache_mb", None)
        compile_s = extra.pop("compile_s", None)
        metrics.update(extra)
        reasons.update(extra_reasons)
        hardware.update(extra_hw)
        if compile_s is not None:  # compile_s: the total over the measured modes
            metrics["compile_s"] = float(metrics.get("compile_s") or 0.0) + float(compile_s)
    for name, value in metrics.items():
        if isinstance(value, float) and not math.isfinite(value):
            metrics[name] = None
            reasons[name] = f"archbench.latency reported {value}"
    for name in COST_METRICS:
        if metrics.get(name) is None:
            metrics[name] = None
            reasons.setdefault(name, "not reported by archbench.latency")
    reasons = {k: v for k, v in reasons.items() if metrics.get(k) is None}
    return Measured(metrics, reasons, hardware)


def _mode(
    mode: str, model: nn.Module, arch: Architecture, device: torch.device, deploy: Deploy
) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """Metrics, null reasons and hardware columns of one decode/generate measurement (nulls on failure)."""
    from archbench.latency.decode import measure_decode, measure_generate

    keys = MODE_METRICS[mode]
    try:
        if mode == "decode":
            m = measure_decode(model, arch, device, batch=deploy.batch, context=deploy.context,
                               exec_mode=deploy.exec_mode, memory=False)  # fmt: skip
        else:
            m = measure_generate(model, arch, device, batch=deploy.batch, prompt=deploy.context,
                                 new_tokens=deploy.new_tokens, exec_mode=deploy.exec_mode)  # fmt: skip
    except Exception as exc:
        if isinstance(exc, torch.OutOfMemoryError) and torch.cuda.is_available():
            torch.cuda.empty_cache()
        why = f"{mode} measurement failed: {one_line(exc)}"
        return dict.fromkeys(keys), dict.fromkeys(keys, why), {}
    metrics = {k: m.metrics.get(k) for k in (*keys, "compile_s")}
    reasons = {k: m.null_reasons.get(k, "not reported") for k in keys if metrics[k] is None}
    hardware = {k: v for k, v in m.hardware.items() if k.startswith(mode + "_")}
    hardware[f"{mode}_recompiles_in_window"] = m.hardware.get("recompiles_in_window")
    return metrics, reasons, hardware
