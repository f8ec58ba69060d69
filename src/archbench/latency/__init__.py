"""Hardware measurement: latency, energy, memory, FLOPs, model size, roofline and the hardware fingerprint.

    from archbench.latency import measure_model
    m = measure_model(model, arch=arch, device="cpu", batch=1)   # -> ModelMeasurement
    m.metrics["latency_ms"], m.null_reasons, m.hardware

The window API works on its own: ``Monitor(open_gpu()).begin_window("x")`` ... ``end_window("x")``.
This package must not import search or leaderboard code. Its names load on first use (torch with them),
so that ``archbench.latency.stats`` imports without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archbench.lazy import lazy_exports

if TYPE_CHECKING:
    from archbench.latency.fingerprint import hardware_fingerprint
    from archbench.latency.flops import FlopCount, count_flops, count_model_flops
    from archbench.latency.measure import ModelMeasurement, measure_model
    from archbench.latency.monitor import Monitor, WindowResult
    from archbench.latency.nvml import NullGpu, NvmlError, NvmlGpu, NvmlNotSupported, open_gpu
    from archbench.latency.size import model_bytes
    from archbench.latency.stats import StopRule, Summary, summarize
    from archbench.latency.timing import LatencyResult, time_callable

_IN = {
    ".fingerprint": ("hardware_fingerprint",),
    ".flops": ("FlopCount", "count_flops", "count_model_flops"),
    ".measure": ("ModelMeasurement", "measure_model"),
    ".monitor": ("Monitor", "WindowResult"),
    ".nvml": ("NullGpu", "NvmlError", "NvmlGpu", "NvmlNotSupported", "open_gpu"),
    ".size": ("model_bytes",),
    ".stats": ("StopRule", "Summary", "summarize"),
    ".timing": ("LatencyResult", "time_callable"),
}
__getattr__, __dir__ = lazy_exports(__name__, _IN)

__all__ = [
    "FlopCount",
    "LatencyResult",
    "ModelMeasurement",
    "Monitor",
    "NullGpu",
    "NvmlError",
    "NvmlGpu",
    "NvmlNotSupported",
    "StopRule",
    "Summary",
    "WindowResult",
    "count_flops",
    "count_model_flops",
    "hardware_fingerprint",
    "measure_model",
    "model_bytes",
    "open_gpu",
    "summarize",
    "time_callable",
]
