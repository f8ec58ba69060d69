"""Latency of a callable: warm-up, synchronisation, per-call samples on the device's own clock,
adaptive repetition (:class:`~archbench.latency.stats.StopRule`).

On a GPU every call is timed with a pair of CUDA events (optionally after flushing L2, as triton's
``do_bench`` does, with the flush outside the events); on a CPU with ``time.perf_counter_ns`` (monotonic).
Compilation and first calls are never timed: warm-up runs until ``warmup_calls`` calls *and*
``warmup_s`` seconds are done and the last call compiled nothing. A compile seen inside the timed
window is counted in ``recompiles``; such a result is spoiled and callers must not keep it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from archbench.latency.monitor import Monitor, WindowResult
from archbench.latency.stats import StopRule, Summary, summarize


def compile_events() -> int:
    """How many frames torch.compile has traced so far in this process (grows on every (re)compile)."""
    from torch._dynamo.utils import counters

    return int(counters["frames"]["total"]) + int(counters["stats"]["unique_graphs"])


@dataclass(frozen=True)
class LatencyResult:
    """The samples (ms) of one timed run and how they were taken."""

    samples_ms: tuple[float, ...]
    summary: Summary
    method: str  # "cuda_event" | "perf_counter"
    stop_reason: str  # "converged" | "median_precise" | "time_cap" | "max_samples"
    warmup_calls: int
    warmup_s: float
    threads: int
    flush_l2: bool
    recompiles: int  # compiles inside the timed window: > 0 spoils the result
    window: WindowResult

    @property
    def spoiled(self) -> bool:
        return self.recompiles > 0


def _l2_flusher(device: torch.device) -> Callable[[], None]:
    """A function that evicts the GPU's L2 by writing a buffer twice its size (256 MB when unknown)."""
    props = torch.cuda.get_device_properties(device)
    size = max(2 * int(getattr(props, "L2_cache_size", 0) or 0), 256 * 2**20)
    buffer = torch.empty(size, dtype=torch.int8, device=device)
    return buffer.zero_


def warm_up(fn: Callable[[], object], sync: Callable[[], None], calls: int, seconds: float, max_s: float) -> int:
    """Call ``fn`` until ``calls`` calls and ``seconds`` have passed and the last call compiled nothing
    (or ``max_s`` is spent); returns the number of calls."""
    n, start = 0, time.perf_counter()
    while True:
        before = compile_events()
        fn()
        sync()
        n += 1
        elapsed = time.perf_counter() - start
        clean = compile_events() == before
        if (n >= calls and elapsed >= seconds and clean) or elapsed >= max_s:
            return n


def time_callable(
    fn: Callable[[], object],
    device: torch.device | str = "cpu",
    *,
    rule: StopRule | None = None,
    warmup_calls: int = 3,
    warmup_s: float = 0.2,
    warmup_max_s: float = 120.0,
    flush_l2: bool = False,
    monitor: Monitor | None = None,
    window_name: str = "latency",
) -> LatencyResult:
    """Time ``fn()`` on ``device`` until ``rule`` says stop; the timed loop runs inside a monitor window."""
    device = torch.device(device)
    rule = rule or StopRule()
    cuda = device.type == "cuda"
    sync: Callable[[], None] = (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None)
    monitor = monitor or Monitor(sync=sync)
    flush = _l2_flusher(device) if cuda and flush_l2 else None

    w_start = time.perf_counter()
    n_warm = warm_up(fn, sync, warmup_calls, warmup_s, warmup_max_s)
    w_elapsed = time.perf_counter() - w_start

    samples: list[float] = []
    next_check = 1
    compiles_before = compile_events()
    monitor.begin_window(window_name)
    start = time.perf_counter()
    if cuda:
        begin_evt, end_evt = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    while True:
        if cuda:
            if flush is not None:
                flush()
            begin_evt.record()
            fn()
            end_evt.record()
            end_evt.synchronize()
            samples.append(float(begin_evt.elapsed_time(end_evt)))
        else:
            t0 = time.perf_counter_ns()
            fn()
            samples.append((time.perf_counter_ns() - t0) / 1e6)
        elapsed = time.perf_counter() - start
        if len(samples) >= next_check or elapsed >= rule.time_cap_s:
            reason = rule.stop_reason(samples, elapsed)
            if reason is not None:
                break
            next_check = min(len(samples) + max(1, len(samples) // 32), rule.max_samples)  # judging is O(n log n)
    window = monitor.end_window(window_name)
    return LatencyResult(
        samples_ms=tuple(samples),
        summary=summarize(samples),
        method="cuda_event" if cuda else "perf_counter",
        stop_reason=reason,
        warmup_calls=n_warm,
        warmup_s=w_elapsed,
        threads=torch.get_num_threads(),
        flush_l2=flush is not None,
        recompiles=compile_events() - compiles_before,
        window=window,
    )


def time_unspoiled(fn: Callable[[], object], device: torch.device | str = "cpu", **kwargs: object) -> LatencyResult:
    """:func:`time_callable`, timed once more if a recompile spoiled the first window (the caller checks
    ``spoiled`` on the result: a second spoiled window is left to it to report)."""
    result = time_callable(fn, device, **kwargs)  # type: ignore[arg-type]
    return result if not result.spoiled else time_callable(fn, device, **kwargs)  # type: ignore[arg-type]


def repeat_for(fn: Callable[[], object], sync: Callable[[], None], seconds: float) -> int:
    """Call ``fn`` back to back until ``seconds`` have passed (synchronised at the end); returns the count."""
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
        if n % 8 == 0:
            sync()  # keep the queue short so the clock sees the device's pace
    sync()
    return n
