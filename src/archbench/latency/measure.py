"""``measure_model``: every hardware metric of one deployed model at one shape, as one frozen record.

Mode timed: prefill (one forward over ``batch x seq_len`` random token ids), eager unless
``compile=True``. Order: warm-up, latency (adaptive), energy (a window of at least ``energy_window_s``
of back-to-back inference after measuring idle power), peak memory of one call, then the static costs
(params, FLOPs, bytes) and the roofline. Every metric that is not measured is ``None`` with a reason.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from archbench.errors import ConfigError
from archbench.latency.fingerprint import hardware_fingerprint
from archbench.latency.flops import FlopCount, count_flops
from archbench.latency.memory import peak_memory_mb
from archbench.latency.monitor import Monitor, WindowResult
from archbench.latency.nvml import Gpu, NullGpu, open_gpu
from archbench.latency.roofline import Roofline, roofline
from archbench.latency.size import model_bytes, tensor_bytes
from archbench.latency.stats import StopRule
from archbench.latency.timing import LatencyResult, repeat_for, time_unspoiled
from archbench.metrics import names
from archbench.search_space.architecture import Architecture
from archbench.search_space.attention import flex_compile_mode, flex_compiled
from archbench.search_space.model import count_params

LATENCY_KEYS = names(mode="prefill", measures="latency")
ENERGY_KEYS = names(mode="prefill", measures="energy")
METRIC_KEYS = names(mode="prefill", computed=False)  # every metric one prefill measurement reads


@dataclass(frozen=True)
class ModelMeasurement:
    """One model measured at one shape. ``metrics`` keys are :data:`archbench.trial.METRICS` names."""

    metrics: Mapping[str, float | int | None]
    null_reasons: Mapping[str, str]  # a reason for every None metric
    hardware: Mapping[str, Any]  # fingerprint + how it was measured (timing method, threads, throttling)
    latency: LatencyResult | None = None
    energy: WindowResult | None = None
    flop_count: FlopCount | None = None
    roofline: Roofline | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for key, value in self.metrics.items():
            if value is None and not self.null_reasons.get(key):
                raise ValueError(f"metric {key} is None without a reason")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"metric {key} is {value}: use None with a reason")

    def to_dict(self) -> dict[str, Any]:
        """One flat JSON-ready object: metrics, hardware columns and ``null_reasons``."""
        return {**self.metrics, **self.hardware, "null_reasons": dict(self.null_reasons), "notes": list(self.notes)}


class _Record:
    """Collects metrics and the reasons for the ones left null."""

    def __init__(self, keys: Iterable[str] = METRIC_KEYS) -> None:
        self.metrics: dict[str, float | int | None] = dict.fromkeys(keys)
        self.reasons: dict[str, str] = {}

    def null(self, keys: tuple[str, ...] | str, reason: str) -> None:
        for key in (keys,) if isinstance(keys, str) else keys:
            self.metrics[key] = None
            self.reasons[key] = reason

    def set(self, key: str, value: float | int | None, reason: str = "") -> None:
        if value is None:
            self.null(key, reason or "not measured")
        else:
            self.metrics[key] = value
            self.reasons.pop(key, None)

    def failed(self, keys: tuple[str, ...], reason: str) -> None:
        """``keys`` null with ``reason`` (a run out of memory), and ``compile_s`` unless the first call set it."""
        self.null(keys, reason)
        if self.metrics["compile_s"] is None and "compile_s" not in self.reasons:
            self.null("compile_s", reason)

    def peak_memory(self, fn: Callable[[], object], device: torch.device, resident: int, enabled: bool) -> str:
        """``peak_mem_mb`` of one call of ``fn`` (or null when not ``enabled``); the note on how it was read."""
        if not enabled:
            self.null("peak_mem_mb", "memory measurement turned off (memory=False)")
            return ""
        value, note = peak_memory_mb(fn, device, resident)
        self.set("peak_mem_mb", value, note)
        return note

    def sizes(self, model: nn.Module) -> None:
        self.set("params", count_params(model))
        self.set("model_bytes", model_bytes(model))


def _resolve_arch(model: nn.Module, arch: Architecture | None) -> Architecture:
    arch = arch if arch is not None else getattr(model, "arch", None)
    if not isinstance(arch, Architecture):
        raise ConfigError("measure_model needs the Architecture (arch=...) of a model that does not carry one")
    return arch


def _instruments(device: torch.device, gpu: Gpu | None, no_gpu: str) -> tuple[Gpu, Callable[[], None]]:
    """The NVML handle (``gpu``, else opened for a CUDA device, else a null one saying ``no_gpu``) and the
    device's synchronisation."""
    cuda = device.type == "cuda"
    if gpu is None:
        gpu = open_gpu(device.index or torch.cuda.current_device()) if cuda else NullGpu(no_gpu)
    return gpu, (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None)


def _tokens(arch: Architecture, batch: int, length: int, seed: int, device: torch.device) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, arch.vocab_size, (batch, length), generator=gen).to(device)  # random, never zeros


def _flex(flex_compile: bool | None) -> contextlib.AbstractContextManager[object]:
    """FlexAttention compiled (True) or eager (False) while measuring; None: the per-device default."""
    return flex_compile_mode(flex_compile) if flex_compile is not None else contextlib.nullcontext()


def _num_classes(model: nn.Module) -> int | None:
    head = getattr(model, "head", None)
    return head.out_features if isinstance(head, nn.Linear) else None


def _device(device: torch.device | str) -> torch.device:
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda requested but torch sees no CUDA GPU (use --device cpu)")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {device.type!r}: archbench measures on cpu or cuda")
    return device


def measure_model(
    model: nn.Module,
    arch: Architecture | None = None,
    device: torch.device | str = "cpu",
    batch: int = 1,
    seq_len: int | None = None,
    *,
    rule: StopRule | None = None,
    warmup_calls: int = 5,
    warmup_s: float = 0.5,
    energy: bool = True,
    energy_window_s: float = 2.0,
    idle_s: float = 1.0,
    memory: bool = True,
    train_memory: bool = False,
    flush_l2: bool = False,
    cuda_graph: bool = False,
    compile: bool = False,
    flex_compile: bool | None = True,
    gpu: Gpu | None = None,
    seed: int = 0,
) -> ModelMeasurement:
    """Measure the deployed (already quantized) ``model`` on ``device`` at ``batch x seq_len``.

    ``seq_len`` None means ``arch.max_seq_len``. ``rule`` sets the adaptive repetition (CV target and
    time cap). ``gpu`` is an NVML handle (default: opened for the CUDA device; none on CPU).
    ``cuda_graph`` replays the forward from a captured CUDA graph (removes launch overhead of small
    models); ``compile`` times ``torch.compile(model)``. A recompile inside the timed window spoils the
    latency, which is then retried once and otherwise left null with the reason.
    """
    arch = _resolve_arch(model, arch)
    device = _device(device)
    seq_len = arch.max_seq_len if seq_len is None else seq_len
    if batch < 1 or not 1 <= seq_len <= arch.max_seq_len:
        raise ConfigError(f"batch={batch}, seq_len={seq_len}: need batch >= 1 and 1 <= seq_len <= {arch.max_seq_len}")
    gpu, sync = _instruments(device, gpu, "no NVML on a CPU run")
    monitor = Monitor(gpu, sync=sync)
    rec, notes = _Record(), []

    model = model.to(device).eval()
    inputs = _tokens(arch, batch, seq_len, seed, device)
    runner: nn.Module | Callable[..., Any] = torch.compile(model) if compile else model
    forward: Callable[[], object] = lambda: runner(inputs)  # noqa: E731
    mode = "compile" if compile else "eager"
    if cuda_graph:
        forward, graph_note = _cuda_graph(forward, device)
        notes.append(graph_note)
        mode += "+cuda_graph" if "captured" in graph_note else ""

    latency: LatencyResult | None = None
    window: WindowResult | None = None
    with _flex(flex_compile), torch.inference_mode():
        try:
            first_call(forward, sync, rec, compiled=compile)
            latency = time_unspoiled(
                forward, device, rule=rule, warmup_calls=warmup_calls, warmup_s=warmup_s,
                flush_l2=flush_l2, monitor=monitor,
            )  # fmt: skip
            if latency.spoiled:
                rec.null(LATENCY_KEYS, f"torch.compile recompiled {latency.recompiles}x inside the timed window")
            else:
                s = latency.summary
                rec.set("latency_ms", s.median)
                rec.set("prefill_ms", s.median)  # the same number under its deployment name
                rec.set("latency_p90_ms", s.p90)
                rec.set("latency_cv", s.cv)
                rec.set("latency_iqr_ms", s.iqr)
                rec.set("latency_samples", s.n)
            window = _energy(rec, monitor, forward, sync, energy, energy_window_s, idle_s)
        except torch.OutOfMemoryError as exc:
            reason = f"out of memory at batch={batch}, seq_len={seq_len}: {str(exc).splitlines()[0]}"
            rec.failed((*LATENCY_KEYS, *ENERGY_KEYS), reason)
        note = rec.peak_memory(forward, device, model_bytes(model) + tensor_bytes([inputs]), memory)
        notes += [f"peak_mem_mb: {note}"] if memory else []
    if train_memory:
        value, note = _train_memory(model, inputs, device)
        rec.set("peak_train_mem_mb", value, note)

    rec.sizes(model)
    flop_count = count_flops(arch, batch, seq_len, num_classes=_num_classes(model))
    rec.set("flops", flop_count.total)
    roof = _roofline(rec, device, arch, flop_count)

    hardware = hardware_fingerprint(device, gpu)
    hardware.update(_conditions(latency, window, mode, device, flush_l2))
    if flex_compile is not None:
        hardware["flex_compiled"] = flex_compile
    return ModelMeasurement(rec.metrics, rec.reasons, hardware, latency, window, flop_count, roof, tuple(notes))


def first_call(fn: Callable[[], object], sync: Callable[[], None], rec: _Record, compiled: bool) -> None:
    """Run ``fn`` once, untimed by the statistics; when ``compiled``, its wall time (tracing, compiling
    and one call) is ``compile_s``, otherwise ``compile_s`` is null with the reason."""
    start = time.perf_counter()
    fn()
    sync()
    if compiled:
        rec.set("compile_s", time.perf_counter() - start)
    else:
        rec.null("compile_s", "eager execution: nothing compiled")


def _energy(
    rec: _Record,
    monitor: Monitor,
    forward: Callable[[], object],
    sync: Callable[[], None],
    enabled: bool,
    window_s: float,
    idle_s: float,
) -> WindowResult | None:
    if not enabled:
        rec.null(ENERGY_KEYS, "energy measurement turned off (energy=False)")
        return None
    if not monitor.gpu.available:
        rec.null(ENERGY_KEYS, f"no GPU energy counter here ({monitor.gpu.reason})")
        return None
    idle_w, idle_reason = monitor.idle_power_w(idle_s)
    monitor.begin_window("energy")
    n = repeat_for(forward, sync, window_s)
    window = monitor.end_window("energy")
    if window.energy_j is None:
        rec.null(ENERGY_KEYS, window.energy_reason)
        return window
    rec.set("energy_mj", window.energy_j / n * 1000.0)
    rec.set("avg_power_w", window.avg_power_w)
    above = window.energy_above(idle_w)
    rec.set("energy_above_idle_mj", None if above is None else above / n * 1000.0, idle_reason)
    return window


def _roofline(rec: _Record, device: torch.device, arch: Architecture, flop_count: FlopCount) -> Roofline | None:
    latency_ms, nbytes = rec.metrics["latency_ms"], rec.metrics["model_bytes"]
    if latency_ms is None:
        rec.null("roofline_fraction", "no latency to compare with the roofline floor")
        return None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    tf32 = device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32
    roof, reason = roofline(name, arch.quant, flop_count.total, int(nbytes or 0), float(latency_ms) / 1000, tf32)
    if device.type == "cpu":
        reason = "peak FLOP rate and bandwidth of this CPU are not known and not measured (no roofline on cpu)"
    rec.set("roofline_fraction", None if roof is None else roof.achieved_fraction, reason)
    return roof


def _conditions(
    latency: LatencyResult | None, window: WindowResult | None, mode: str, device: torch.device, flush_l2: bool
) -> dict[str, Any]:
    """How the numbers were taken: columns next to the fingerprint."""
    lat_window = latency.window if latency is not None else None
    windows = [w for w in (lat_window, window) if w is not None]
    reasons = sorted({r for w in windows for r in w.throttle_reasons})
    return {
        "measure_mode": "prefill",
        "exec_mode": mode,
        "timing_method": latency.method if latency is not None else None,
        "latency_stop_reason": latency.stop_reason if latency is not None else None,
        "flex_compiled": flex_compiled(device),
        "flush_l2": flush_l2,
        "recompiles_in_window": latency.recompiles if latency is not None else None,
        "energy_source": window.energy_source if window is not None else None,
        "sm_clock_mhz_min": min((w.sm_clock_mhz_min for w in windows if w.sm_clock_mhz_min), default=None),
        "sm_clock_mhz_max": max((w.sm_clock_mhz_max for w in windows if w.sm_clock_mhz_max), default=None),
        "mem_clock_mhz": max((w.mem_clock_mhz for w in windows if w.mem_clock_mhz), default=None),
        "host_load_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,  # co-tenants: noise
        "throttle_reasons": ",".join(reasons),
        "throttled": any(w.throttled for w in windows) if any(w.power_samples for w in windows) else None,
    }


def _cuda_graph(forward: Callable[[], object], device: torch.device) -> tuple[Callable[[], object], str]:
    """``forward`` replayed from a captured CUDA graph (same static inputs), or unchanged with the reason."""
    if device.type != "cuda":
        return forward, "cuda_graph ignored: not a CUDA device"
    try:
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream), torch.inference_mode():
            for _ in range(3):  # warm-up on a side stream before capture, as torch's docs require
                forward()
        torch.cuda.current_stream(device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.inference_mode():
            forward()
    except RuntimeError as exc:
        return forward, f"cuda_graph capture failed, timed eagerly: {str(exc).splitlines()[0]}"
    return graph.replay, "cuda_graph: captured"


def _train_memory(model: nn.Module, inputs: torch.Tensor, device: torch.device) -> tuple[float | None, str]:
    """Peak memory of one forward + backward (grads freed afterwards), or None with the reason."""
    params = [p for p in model.parameters() if p.is_floating_point()]
    was_grad = [p.requires_grad for p in params]

    def step() -> None:
        model(inputs).float().logsumexp(-1).mean().backward()

    try:
        model.train()
        for p in params:
            p.requires_grad_(True)
        with contextlib.ExitStack():
            value, note = peak_memory_mb(step, device, model_bytes(model) + tensor_bytes([inputs]))
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        value, note = None, f"training step failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    finally:
        model.eval()
        for p, g in zip(params, was_grad, strict=True):
            p.requires_grad_(g)
            p.grad = None
    return value, f"training step (forward + backward); {note}"
