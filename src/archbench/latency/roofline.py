"""Roofline floor time from known peak rates: ``floor = max(flops / peak_flops, bytes / bandwidth)``.

Peaks are the vendors' dense (no 2:4 sparsity) datasheet figures per compute dtype, keyed by the name
NVML / torch report. The bytes are the model's deployed size: every weight must be read from memory at
least once per inference, so this floor is a lower bound and ``achieved = floor / latency`` is at most 1
(up to caching effects). Devices not in the table (every CPU) get ``None`` with the reason: archbench
does not guess peak rates.
"""

from __future__ import annotations

from dataclasses import dataclass

TFLOP = 1e12
TB = 1e12


@dataclass(frozen=True)
class Peaks:
    """Peak dense rates of one device: FLOP/s per compute dtype and memory bandwidth in bytes/s."""

    name: str
    flops: dict[str, float]  # "fp32" (no tensor cores), "tf32", "bf16" (= fp16), "fp8", "int8"
    bandwidth: float


def _peaks(name: str, fp32: float, tf32: float, bf16: float, fp8: float | None, int8: float, tb_s: float) -> Peaks:
    rates = {"fp32": fp32 * TFLOP, "tf32": tf32 * TFLOP, "bf16": bf16 * TFLOP, "int8": int8 * TFLOP}
    if fp8 is not None:
        rates["fp8"] = fp8 * TFLOP
    return Peaks(name, rates, tb_s * TB)


# Order matters: the first pattern contained in the device name wins (most specific first).
KNOWN_PEAKS: tuple[tuple[str, Peaks], ...] = (
    ("H200 NVL", _peaks("H200 NVL", 60, 418, 835, 1671, 1671, 4.8)),
    ("H200", _peaks("H200 SXM", 67, 495, 989, 1979, 1979, 4.8)),
    ("H100 PCIe", _peaks("H100 PCIe", 51, 378, 756, 1513, 1513, 2.0)),
    ("H100 NVL", _peaks("H100 NVL", 60, 418, 835, 1671, 1671, 3.9)),
    ("H100", _peaks("H100 SXM", 67, 495, 989, 1979, 1979, 3.35)),
    ("A100-SXM4-80GB", _peaks("A100 SXM 80GB", 19.5, 156, 312, None, 624, 2.039)),
    ("A100 80GB PCIe", _peaks("A100 PCIe 80GB", 19.5, 156, 312, None, 624, 1.935)),
    ("A100", _peaks("A100 40GB", 19.5, 156, 312, None, 624, 1.555)),
    ("L40S", _peaks("L40S", 91.6, 183, 362, 733, 733, 0.864)),
    ("L4", _peaks("L4", 30.3, 60, 121, 242, 242, 0.3)),
)

# The dtype the matrix products of each deployed precision run in.
QUANT_COMPUTE = {
    "fp32": "fp32",
    "bf16": "bf16",
    "fp16": "bf16",
    "int8": "int8",
    "int8_weight_only": "fp32",  # weights dequantised, activations stay float
    "fp8": "fp8",
}


def known_peaks(device_name: str | None) -> Peaks | None:
    if not device_name:
        return None
    for pattern, peaks in KNOWN_PEAKS:
        if pattern.lower() in device_name.lower():
            return peaks
    return None


@dataclass(frozen=True)
class Roofline:
    floor_s: float
    compute_s: float
    memory_s: float
    achieved_fraction: float  # floor / measured latency
    bound: str  # "compute" | "memory"
    peaks: str


def roofline(
    device_name: str | None, quant: str, flops: int, nbytes: int, latency_s: float, tf32: bool = False
) -> tuple[Roofline | None, str]:
    """The roofline of one measured inference, or None with the reason."""
    peaks = known_peaks(device_name)
    if peaks is None:
        return None, f"peak FLOP rate and bandwidth of {device_name or 'this device'} are not known (not guessed)"
    dtype = QUANT_COMPUTE.get(quant, "fp32")
    if dtype == "fp32" and tf32:
        dtype = "tf32"
    if dtype not in peaks.flops:
        return None, f"{peaks.name} has no {dtype} peak (no such tensor cores)"
    if latency_s <= 0:
        return None, "no measured latency to compare with the floor"
    compute_s, memory_s = flops / peaks.flops[dtype], nbytes / peaks.bandwidth
    floor = max(compute_s, memory_s)
    bound = "compute" if compute_s >= memory_s else "memory"
    return Roofline(floor, compute_s, memory_s, floor / latency_s, bound, peaks.name), ""
