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


def test_cuda_decode_generate_and_graph_replay() -> None:
    from archbench.latency.decode import measure_decode, measure_generate

    model = quantize(build(ARCH).cuda(), "bf16", "cuda").model
    rule = StopRule(time_cap_s=2)
    eager = measure_decode(model, ARCH, "cuda", batch=8, context=128, rule=rule)
    graphed = measure_decode(model, ARCH, "cuda", batch=8, context=128, rule=rule, cuda_graph=True)
    assert eager.hardware["timing_method"] == "cuda_event" and eager.metrics["decode_ms_per_token"] > 0
    assert graphed.hardware["exec_mode"] == "eager+cuda_graph" and graphed.metrics["decode_ms_per_token"] > 0
    # bf16 cache: 4 layers x (k + v) x batch 8 x 4 heads x 128 tokens x 64 dims x 2 bytes
    assert eager.metrics["kv_cache_mb"] == pytest.approx(4 * 2 * 8 * 4 * 128 * 64 * 2 / 2**20)
    gen = measure_generate(model, ARCH, "cuda", batch=8, prompt=128, new_tokens=16, rule=rule)
    assert gen.metrics["ttft_ms"] > 0 and gen.metrics["tpot_ms"] > 0


def test_cuda_incremental_decoding_equals_the_full_forward() -> None:
    import torch

    for attention in ("dense", "sliding_window", "block_sparse", "linear"):
        arch = ARCH.replace(
            quant="fp32", attention=attention, window=32 if attention in ("sliding_window", "block_sparse") else 0
        )
        model = build(arch).cuda().eval()
        prompt = torch.randint(0, arch.vocab_size, (2, 40), device="cuda")
        tokens, chosen = model.generate(prompt, 64)
        with torch.no_grad():
            full = model(tokens[:, :-1])[:, 39:]
        torch.testing.assert_close(chosen, full, atol=2e-4, rtol=1e-4)  # TF32 / kernel choice differ on GPU
