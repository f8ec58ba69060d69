"""The real GPU path (CUDA events, NVML energy). Skipped without CUDA; run it on a GPU machine."""

from __future__ import annotations

import pytest

from archbench.latency import StopRule, measure_model, open_gpu
from archbench.search_space import Architecture, build
from archbench.search_space.quantize import quantize

pytestmark = pytest.mark.gpu

ARCH = Architecture(depth=4, width=256, heads=4, max_seq_len=256, quant="bf16")


def test_cuda_latency_energy_memory_roofline() -> None:
    model = quantize(build(ARCH).cuda(), "bf16", "cuda").model
    result = measure_model(model, arch=ARCH, device="cuda", batch=8, rule=StopRule(time_cap_s=5))
    m, hw = result.metrics, result.hardware
    assert hw["timing_method"] == "cuda_event" and hw["device_kind"] == "cuda"
    assert hw["gpu_count"] >= 1 and hw["driver_version"] and hw["cuda_version"]
    assert m["latency_ms"] > 0 and m["peak_mem_mb"] > m["model_bytes"] / 2**20
    if open_gpu(0).energy_mj() is not None:
        assert m["energy_mj"] > 0 and m["avg_power_w"] > 20
        assert result.energy.sampled_energy_j == pytest.approx(result.energy.energy_j, rel=0.1)
    if "H100" in hw["device_name"] or "H200" in hw["device_name"]:
        assert 0 < m["roofline_fraction"] <= 1.0


def test_cuda_graph_and_l2_flush_run() -> None:
    model = quantize(build(ARCH).cuda(), "bf16", "cuda").model
    rule = StopRule(time_cap_s=2)
    graphed = measure_model(model, arch=ARCH, device="cuda", rule=rule, cuda_graph=True, energy=False)
    flushed = measure_model(model, arch=ARCH, device="cuda", rule=rule, flush_l2=True, energy=False)
    assert "cuda_graph" in graphed.hardware["exec_mode"]
    assert flushed.hardware["flush_l2"] is True
    assert graphed.metrics["latency_ms"] > 0 and flushed.metrics["latency_ms"] > 0
