"""Peak memory of one call, on the device where it runs.

* CUDA: ``torch.cuda.max_memory_allocated`` after resetting the peak: every live tensor counts,
  weights and inputs included (the caching allocator's reserved slack does not).
* CPU: the CPU allocator keeps no statistics, so one call runs under ``torch.profiler`` with
  ``profile_memory=True`` and the peak of its allocation events (allocations minus frees, in order) is
  added to the bytes already resident (weights and inputs, given by the caller). Memory held outside
  torch tensors (the interpreter, oneDNN scratch) is not seen, which the reason field says.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator

import torch

CPU_NOTE = "cpu: resident weights + inputs + torch.profiler's peak of tensor allocations during one call"


def peak_cuda_bytes(fn: Callable[[], object], device: torch.device) -> int:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device))


def peak_cpu_alloc_bytes(fn: Callable[[], object]) -> int:
    """Peak of (allocated - freed) CPU tensor bytes during one ``fn()`` call, from the profiler's events."""
    from torch.profiler import ProfilerActivity, profile

    with _native_stderr_silenced(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [(e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if _is_cpu_memory(e)]
    live = peak = 0
    for _, nbytes in sorted(events):
        live += nbytes
        peak = max(peak, live)
    return peak


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Kineto prints start/stop lines from C++ straight to fd 2; send fd 2 to /dev/null meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _is_cpu_memory(event: object) -> bool:
    return event.name() == "[memory]" and str(event.device_type()).endswith("CPU")  # type: ignore[attr-defined]


def peak_memory_mb(
    fn: Callable[[], object], device: torch.device | str, resident_bytes: int = 0
) -> tuple[float | None, str]:
    """Peak memory of one ``fn()`` in MiB and a note on what it counts (or None and the reason)."""
    device = torch.device(device)
    try:
        if device.type == "cuda":
            return peak_cuda_bytes(fn, device) / 2**20, "cuda: torch.cuda.max_memory_allocated"
        if device.type == "cpu":
            return (resident_bytes + peak_cpu_alloc_bytes(fn)) / 2**20, CPU_NOTE
    except (RuntimeError, AttributeError) as exc:
        return None, f"peak memory could not be measured on {device.type}: {type(exc).__name__}: {exc}"
    return None, f"no way to measure peak memory on device type {device.type!r}"
