"""Roofline floor from known peaks; unknown devices get None with the reason."""

from __future__ import annotations

import pytest

from archbench.latency.roofline import known_peaks, roofline


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("NVIDIA H100 80GB HBM3", "H100 SXM"),
        ("NVIDIA H100 PCIe", "H100 PCIe"),
        ("NVIDIA H200", "H200 SXM"),
        ("NVIDIA A100-SXM4-80GB", "A100 SXM 80GB"),
        ("NVIDIA L4", "L4"),
    ],
)
def test_device_names_map_to_their_peaks(name: str, expected: str) -> None:
    peaks = known_peaks(name)
    assert peaks is not None and peaks.name == expected


def test_floor_is_the_slower_of_compute_and_memory() -> None:
    # H100 SXM bf16: 989 TFLOP/s, 3.35 TB/s
    roof, reason = roofline("NVIDIA H100 80GB HBM3", "bf16", flops=989 * 10**12, nbytes=335 * 10**10, latency_s=2.0)
    assert reason == "" and roof is not None
    assert roof.compute_s == pytest.approx(1.0) and roof.memory_s == pytest.approx(1.0)
    assert roof.achieved_fraction == pytest.approx(0.5)
    mem_bound, _ = roofline("NVIDIA H100 80GB HBM3", "bf16", flops=10**9, nbytes=335 * 10**9, latency_s=0.2)
    assert mem_bound is not None and mem_bound.bound == "memory" and mem_bound.floor_s == pytest.approx(0.1)
    fp32, _ = roofline("NVIDIA H100 80GB HBM3", "fp32", flops=67 * 10**12, nbytes=0, latency_s=1.0)
    assert fp32 is not None and fp32.achieved_fraction == pytest.approx(1.0)  # no tensor cores for fp32


def test_unknown_devices_and_missing_dtypes_give_reasons() -> None:
    roof, reason = roofline("AMD EPYC", "fp32", 10**9, 10**6, 0.01)
    assert roof is None and "not known" in reason
    roof, reason = roofline("NVIDIA A100-SXM4-80GB", "fp8", 10**9, 10**6, 0.01)
    assert roof is None and "fp8" in reason
