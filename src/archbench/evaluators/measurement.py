"""The bridge to ``archbench.latency``: evaluators never time inference themselves, they ask it.

:func:`measure` returns the cost metrics of the deployed model (latency, energy, memory, size, FLOPs)
with their null reasons and the hardware fingerprint, or, when measurement is skipped or fails,
the same metric names as None with the reason. The modes and shape come from a
:class:`~archbench.deploy.Deploy` (default: prefill only).

How hard it measures is an :class:`Effort`: :data:`FULL` (the default: ``archbench.latency``'s stop rule,
a 2 s energy window) or :data:`SCREEN`, a quick look for a multi-fidelity funnel's first rung (a looser
stop rule capped at 1 s, a 0.5 s energy window) whose rows the funnel measures again in full at its top
rung. :class:`Measured` says which effort a measurement took (``effort``; None when nothing was measured):
the row records it with the deployment in its run settings (``measure_effort``, ``deploy``), not in the
hardware fingerprint.

Each named workload of the deployment (``deploy.workloads``) is measured the same way after the unnamed
deployment, and its metrics that depend on the shape (all but ``params`` and ``model_bytes``) are returned
as ``metric@name`` with their null reasons. ``kv_cache_bytes_per_token`` is not timed but computed from the
architecture (:mod:`archbench.search_space.cache_size`) at each deployment's context.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from archbench.deploy import MODE_METRICS, Deploy
from archbench.metrics import at_workload, names
from archbench.search_space.architecture import Architecture
from archbench.search_space.cache_size import kv_cache_bytes

if TYPE_CHECKING:
    from archbench.latency.stats import StopRule

QUALITY_METRICS = names(source="validation")
TRAINING_METRICS = names(source="training")
COST_METRICS = names(source="measurement")
WORKLOAD_METRICS = names(source="measurement", fixed=False)  # repeated per named workload as metric@name


@dataclass(frozen=True)
class Effort:
    """How long a measurement looks: the latency stop rule (``rule``: :class:`~archbench.latency.StopRule`
    fields; empty: its defaults) and the energy window with its idle baseline before it."""

    name: str
    rule: Mapping[str, float] = field(default_factory=dict)
    energy_window_s: float = 2.0
    idle_s: float = 1.0

    def stop_rule(self) -> StopRule | None:
        from archbench.latency.stats import StopRule

        return StopRule(**self.rule) if self.rule else None  # type: ignore[arg-type]


FULL = Effort("full")
# Cost metrics a quick look measures as exactly as a full one: counts, sizes, one call's memory.
UNTIMED_METRICS = frozenset(names(source="measurement", timed=False))
# The median to about 3% (or a 3% robust spread) after at least 10 calls, and never more than 1 s of timing:
# enough to rank shapes whose latencies differ by more than that, at a fraction of a full measurement's cost.
SCREEN = Effort(
    "screen", {"cv_target": 0.03, "median_ci": 0.03, "min_samples": 10, "min_time_s": 0.05, "time_cap_s": 1.0},
    energy_window_s=0.5, idle_s=0.25,
)  # fmt: skip


@dataclass(frozen=True)
class Measured:
    """Cost metrics (None where not measured), why each None is None, the hardware fingerprint, and the
    effort the measurement took (``Effort.name``; None: nothing was measured)."""

    metrics: Mapping[str, float | int | None]
    null_reasons: Mapping[str, str]
    hardware: Mapping[str, Any] = field(default_factory=dict)
    effort: str | None = None


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
    effort: Effort = FULL,
) -> Measured:
    """Cost metrics of the deployed ``model`` in every mode of ``deploy`` (default: prefill only, eager,
    batch 1 at ``max_seq_len``) from ``archbench.latency``, measured with ``effort``, then those of each
    named workload as ``metric@name``; never raises."""
    deploy = deploy or Deploy()
    if not enabled or model is None:
        why = "not measured: measure=False" if not enabled else f"not measured: {why_not or 'no deployed model'}"
        return _with_workloads(not_measured(why, fingerprint(device)), deploy)
    measured = _measure_one(model, arch, device, deploy, effort)
    if not deploy.workloads:
        return measured
    metrics, reasons = dict(measured.metrics), dict(measured.null_reasons)
    for workload in deploy.workloads:
        at = _measure_one(model, arch, device, workload, effort)
        for name in WORKLOAD_METRICS:
            column = at_workload(name, str(workload.name))
            metrics[column] = at.metrics.get(name)
            if metrics[column] is None:
                reasons[column] = at.null_reasons.get(name, "not reported by archbench.latency")
    return Measured(metrics, reasons, measured.hardware, measured.effort)


def _with_workloads(measured: Measured, deploy: Deploy) -> Measured:
    """``measured`` (nothing measured) with each workload's columns null for the same reason."""
    columns = [at_workload(n, str(w.name)) for w in deploy.workloads for n in WORKLOAD_METRICS]
    reason = next(iter(measured.null_reasons.values()), "not measured")
    return Measured(
        {**measured.metrics, **dict.fromkeys(columns)},
        {**measured.null_reasons, **dict.fromkeys(columns, reason)},
        measured.hardware,
        measured.effort,
    )


def kv_cache_bytes_per_token(model: nn.Module, arch: Architecture, deploy: Deploy) -> tuple[float | None, str]:
    """The decode cache's bytes per token of one sequence at ``deploy``'s context (None and why for a model
    that keeps no cache: an encoder)."""
    if getattr(model, "decode", None) is None:
        return None, f"{type(model).__name__} keeps no decode cache (not a decoder LM)"
    context = deploy.resolved_context(arch.max_seq_len)
    return kv_cache_bytes(arch, context) / context, ""


def _measure_one(
    model: nn.Module, arch: Architecture, device: torch.device, deploy: Deploy, effort: Effort
) -> Measured:
    """:func:`measure` of one deployment (its own modes, not its workloads), with its cache size per token
    (computed, so present even where the timing failed)."""
    measured = _timed(model, arch, device, deploy, effort)
    per_token, why = kv_cache_bytes_per_token(model, arch, deploy)
    reasons = {k: v for k, v in measured.null_reasons.items() if k != "kv_cache_bytes_per_token"}
    if why:
        reasons["kv_cache_bytes_per_token"] = why
    return Measured({**measured.metrics, "kv_cache_bytes_per_token": per_token}, reasons, measured.hardware,
                    measured.effort)  # fmt: skip


def _timed(model: nn.Module, arch: Architecture, device: torch.device, deploy: Deploy, effort: Effort) -> Measured:
    """The metrics ``archbench.latency`` measures of one deployment (nulls with the reason on failure)."""
    try:
        from archbench.latency import measure_model
    except ImportError as exc:
        return not_measured(f"not measured: archbench.latency unavailable ({one_line(exc)})", fingerprint(device))
    try:
        m = measure_model(
            model, arch=arch, device=device, batch=deploy.batch, seq_len=deploy.prompt,
            compile=deploy.exec_mode == "compile", rule=effort.stop_rule(), energy_window_s=effort.energy_window_s,
            idle_s=effort.idle_s,
        )  # fmt: skip
    except Exception as exc:
        if isinstance(exc, torch.OutOfMemoryError) and torch.cuda.is_available():
            torch.cuda.empty_cache()
        return not_measured(f"measurement failed: {one_line(exc)}", fingerprint(device))
    metrics = dict(m.metrics)
    reasons = {k: v for k, v in dict(m.null_reasons).items() if metrics.get(k) is None}
    hardware = {k: v for k, v in m.hardware.items() if k != "measure_mode"}  # the row's: every mode (RunSettings)
    for mode, keys in MODE_METRICS.items():
        if mode not in deploy.modes:
            for key in keys:
                if key not in metrics:
                    metrics[key] = None
                    reasons[key] = f"not measured: {deploy.where}.modes has no {mode} (ask for it as an objective)"
            continue
        extra, extra_reasons, extra_hw = _mode(mode, model, arch, device, deploy, effort.stop_rule())
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
    return Measured(metrics, reasons, hardware, effort.name)


def _mode(
    mode: str, model: nn.Module, arch: Architecture, device: torch.device, deploy: Deploy, rule: StopRule | None
) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """Metrics, null reasons and hardware columns of one decode/generate measurement (nulls on failure)."""
    from archbench.latency.decode import measure_decode, measure_generate

    keys = MODE_METRICS[mode]
    try:
        if mode == "decode":
            m = measure_decode(model, arch, device, batch=deploy.batch, context=deploy.context,
                               exec_mode=deploy.exec_mode, memory=False, rule=rule)  # fmt: skip
        else:
            m = measure_generate(model, arch, device, batch=deploy.batch, prompt=deploy.context,
                                 new_tokens=deploy.new_tokens, exec_mode=deploy.exec_mode, rule=rule)  # fmt: skip
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
