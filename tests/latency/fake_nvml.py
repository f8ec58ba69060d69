"""A stand-in for the ``pynvml`` module: the only fake in these tests, at the NVML boundary.

It models one GPU drawing ``power_w(t)`` watts. Like the real counter, ``nvmlDeviceGetTotalEnergyConsumption``
(mJ since the driver loaded) only moves every ``update_period_s`` (about 100 ms on A100/H100): it reports the
energy up to the last update. ``nvmlDeviceGetPowerUsage`` reports the instantaneous power in mW.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return {3: "Not Supported", 12: "NVML Shared Library Not Found", 15: "GPU is lost"}.get(self.value, "Unknown")


@dataclass
class MemInfo:
    total: int
    used: int
    free: int


class FakePynvml:
    """Has the pynvml functions archbench calls; ``NVMLError`` is an attribute as on the real module."""

    NVMLError = NVMLError

    def __init__(
        self,
        power_w: float | Callable[[float], float] = 300.0,
        update_period_s: float = 0.1,
        energy_supported: bool = True,
        power_supported: bool = True,
        throttle_bits: int = 0,
        init_error: int | None = None,
        lost_after_s: float | None = None,
        name: str = "NVIDIA H100 80GB HBM3",
    ) -> None:
        self.power = power_w if callable(power_w) else (lambda _t, p=float(power_w): p)
        self.update_period_s = update_period_s
        self.energy_supported = energy_supported
        self.power_supported = power_supported
        self.throttle_bits = throttle_bits
        self.init_error = init_error
        self.lost_after_s = lost_after_s
        self.name = name
        self.t0 = time.monotonic()
        self.offset_mj = 987_654_321  # a real counter starts wherever the driver left it
        self.initialised = 0

    # -- helpers -------------------------------------------------------------------------------
    def _now(self) -> float:
        t = time.monotonic() - self.t0
        if self.lost_after_s is not None and t > self.lost_after_s:
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        return t

    def true_energy_j(self, t0: float, t1: float, steps: int = 2000) -> float:
        """Exact energy between two ``time.monotonic()`` instants (midpoint rule), for the tests' checks."""
        a, b = t0 - self.t0, t1 - self.t0
        h = (b - a) / steps
        return sum(self.power(a + (i + 0.5) * h) for i in range(steps)) * h

    # -- pynvml API ----------------------------------------------------------------------------
    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.initialised -= 1

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> object:
        return ("gpu", index)

    def nvmlDeviceGetName(self, handle: object) -> str:
        return self.name

    def nvmlDeviceGetMemoryInfo(self, handle: object) -> MemInfo:
        return MemInfo(total=80 * 2**30, used=2**30, free=79 * 2**30)

    def nvmlSystemGetDriverVersion(self) -> str:
        return "560.35.03"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: object) -> int:
        if not self.energy_supported:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        t = self._now()
        last_update = math.floor(t / self.update_period_s) * self.update_period_s
        return self.offset_mj + round(self.true_energy_j(self.t0, self.t0 + last_update, steps=200) * 1000)

    def nvmlDeviceGetPowerUsage(self, handle: object) -> int:
        if not self.power_supported:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return round(self.power(self._now()) * 1000)

    def nvmlDeviceGetClockInfo(self, handle: object, kind: int) -> int:
        self._now()
        return 1980 if kind == NVML_CLOCK_SM else 2619

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: object) -> int:
        self._now()
        return self.throttle_bits
