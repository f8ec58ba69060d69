"""Timing: warm-up is never timed, samples are per call, compiles inside the window are caught."""

from __future__ import annotations

import time

import torch

from archbench.latency.stats import StopRule
from archbench.latency.timing import time_callable

FAST = StopRule(cv_target=0.5, min_samples=5, min_time_s=0.0, time_cap_s=2.0)


def test_first_calls_are_warm_up_and_never_timed() -> None:
    calls: list[int] = []

    def fn() -> None:
        calls.append(1)
        time.sleep(0.05 if len(calls) <= 3 else 0.001)

    result = time_callable(fn, rule=FAST, warmup_calls=3, warmup_s=0.0)
    assert result.warmup_calls == 3
    assert len(result.samples_ms) == len(calls) - 3
    assert result.summary.median < 20  # the 50 ms calls are not in it
    assert result.method == "perf_counter" and result.threads == torch.get_num_threads()


def test_samples_measure_the_call() -> None:
    result = time_callable(lambda: time.sleep(0.004), rule=FAST, warmup_calls=1, warmup_s=0.0)
    assert 4.0 <= result.summary.median < 15.0
    assert result.summary.n == len(result.samples_ms) >= 5
    assert result.stop_reason in ("converged", "time_cap")
    assert result.window.duration_s * 1000 >= sum(result.samples_ms)


def test_noisy_work_runs_to_the_time_cap() -> None:
    sleeps = iter([0.001, 0.006] * 1000)
    rule = StopRule(cv_target=0.01, min_samples=3, min_time_s=0.0, time_cap_s=0.3, robust=False)
    result = time_callable(lambda: time.sleep(next(sleeps)), rule=rule, warmup_calls=1, warmup_s=0.0)
    assert result.stop_reason == "time_cap"
    assert result.summary.cv > 0.01


def test_a_recompile_inside_the_window_is_counted() -> None:
    sizes = iter(range(1, 100))
    fn = torch.compile(lambda x: x * 2, backend="eager", dynamic=False)
    rule = StopRule(min_samples=3, max_samples=3, min_time_s=0.0)
    result = time_callable(lambda: fn(torch.ones(next(sizes))), rule=rule, warmup_calls=1, warmup_s=0, warmup_max_s=0)
    assert result.recompiles > 0 and result.spoiled


def test_warm_up_absorbs_compiles() -> None:
    shapes = iter([1, 2, 3])
    fn = torch.compile(lambda x: x + 1, backend="eager", dynamic=False)
    result = time_callable(
        lambda: fn(torch.ones(next(shapes, 3))), rule=FAST, warmup_calls=1, warmup_s=0.0, warmup_max_s=60
    )
    assert result.warmup_calls >= 4  # the three compiling calls, then one clean one
    assert result.recompiles == 0 and not result.spoiled
