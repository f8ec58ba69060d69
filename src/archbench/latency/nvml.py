"""NVML behind one small interface: the real GPU through nvidia-ml-py, or a null object without one.

Every call to the NVML library goes through ``self._nv``: the ``pynvml`` module, or a stand-in with the
same functions (tests pass a fake here and nowhere else). NVML errors become :class:`NvmlError`
(``NvmlNotSupported`` for "this GPU does not have that sensor"), with the function's name in the message.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from archbench.errors import ArchbenchError

# NVML's clock-event ("throttle") reason bits (nvml.h, stable since driver 270). Benign ones are
# listed separately: idle, application clocks and sync boost do not mean the window was slowed.
THROTTLE_BITS: dict[int, str] = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
BENIGN_THROTTLE = frozenset({"gpu_idle", "applications_clocks_setting", "sync_boost", "display_clock_setting"})
NVML_ERROR_NOT_SUPPORTED = 3
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2


class NvmlError(ArchbenchError):
    """An NVML call failed (driver missing, GPU lost, no permission, ...)."""


class NvmlNotSupported(NvmlError):
    """This GPU or driver does not support the NVML query (e.g. the energy counter before Volta)."""


def throttle_names(bits: int) -> tuple[str, ...]:
    """Names of the reason bits set in ``bits`` (unknown bits as ``bit_0x...``)."""
    names = [name for bit, name in THROTTLE_BITS.items() if bits & bit]
    unknown = bits & ~sum(THROTTLE_BITS)
    if unknown:
        names.append(f"bits_{unknown:#x}")
    return tuple(names)


@dataclass(frozen=True)
class Clocks:
    sm_mhz: int | None
    mem_mhz: int | None


class NullGpu:
    """Stands in for a GPU where there is none (or NVML cannot be used): every reading is ``None``."""

    available = False

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def name(self) -> str | None:
        return None

    def memory_total_mb(self) -> float | None:
        return None

    def driver_version(self) -> str | None:
        return None

    def energy_mj(self) -> int | None:
        return None

    def power_w(self) -> float | None:
        return None

    def clocks(self) -> Clocks:
        return Clocks(None, None)

    def throttle_reasons(self) -> int | None:
        return None

    def close(self) -> None:
        return None


class NvmlGpu:
    """One GPU read through NVML. ``energy_mj`` / ``power_w`` return ``None`` where unsupported."""

    available = True
    reason = ""

    def __init__(self, index: int = 0, nvml: ModuleType | Any | None = None) -> None:
        self._nv = nvml if nvml is not None else importlib.import_module("pynvml")
        self._call("nvmlInit")
        try:
            count = self._call("nvmlDeviceGetCount")
            if not 0 <= index < count:
                raise NvmlError(f"NVML: GPU index {index} out of range (this machine has {count})")
            self._handle = self._call("nvmlDeviceGetHandleByIndex", index)
        except NvmlError:
            self._call("nvmlShutdown")
            raise
        self.index = index
        self._energy_supported: bool | None = None
        self._power_supported: bool | None = None

    def _call(self, fn: str, *args: Any) -> Any:
        try:
            return getattr(self._nv, fn)(*args)
        except self._nv.NVMLError as exc:
            value = getattr(exc, "value", None)
            cls = NvmlNotSupported if value == NVML_ERROR_NOT_SUPPORTED else NvmlError
            raise cls(f"NVML {fn} failed: {exc}") from None

    def name(self) -> str:
        name = self._call("nvmlDeviceGetName", self._handle)
        return name.decode() if isinstance(name, bytes) else str(name)

    def memory_total_mb(self) -> float:
        return self._call("nvmlDeviceGetMemoryInfo", self._handle).total / 2**20

    def driver_version(self) -> str:
        version = self._call("nvmlSystemGetDriverVersion")
        return version.decode() if isinstance(version, bytes) else str(version)

    def energy_mj(self) -> int | None:
        """Total energy since the driver loaded (mJ), or None where the counter is unsupported."""
        if self._energy_supported is False:
            return None
        try:
            value = int(self._call("nvmlDeviceGetTotalEnergyConsumption", self._handle))
        except NvmlNotSupported:
            self._energy_supported = False
            return None
        self._energy_supported = True
        return value

    def power_w(self) -> float | None:
        """Current power draw (W) as NVML reports it, or None where unsupported."""
        if self._power_supported is False:
            return None
        try:
            value = self._call("nvmlDeviceGetPowerUsage", self._handle) / 1000.0
        except NvmlNotSupported:
            self._power_supported = False
            return None
        self._power_supported = True
        return value

    def clocks(self) -> Clocks:
        def clock(kind: int) -> int | None:
            try:
                return int(self._call("nvmlDeviceGetClockInfo", self._handle, kind))
            except NvmlNotSupported:
                return None

        return Clocks(clock(NVML_CLOCK_SM), clock(NVML_CLOCK_MEM))

    def throttle_reasons(self) -> int | None:
        """The clock-event reason bits now (``nvmlDeviceGetCurrentClocksEventReasons``; older drivers'
        ``...ThrottleReasons``), or None where unsupported."""
        for fn in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"):
            if hasattr(self._nv, fn):
                try:
                    return int(self._call(fn, self._handle))
                except NvmlNotSupported:
                    return None
        return None

    def close(self) -> None:
        self._call("nvmlShutdown")


Gpu = NvmlGpu | NullGpu


def open_gpu(index: int = 0, nvml: ModuleType | Any | None = None) -> Gpu:
    """The GPU ``index`` through NVML, or a :class:`NullGpu` saying why NVML cannot be used here."""
    if nvml is None:
        try:
            nvml = importlib.import_module("pynvml")
        except ImportError:
            return NullGpu("nvidia-ml-py is not installed (pip install nvidia-ml-py)")
    try:
        return NvmlGpu(index, nvml)
    except NvmlError as exc:
        return NullGpu(str(exc))


def other_compute_processes(
    uuid: str | None = None, index: int = 0, nvml: ModuleType | Any | None = None
) -> int | None:
    """How many compute processes besides the caller NVML sees on the GPU ``uuid`` (else NVML index
    ``index``), to flag a measurement that shared its GPU; None where NVML cannot tell.

    The caller holds a CUDA context on that GPU, so it is one of the processes listed. Inside a container
    NVML may list host PIDs, so the caller is counted out by count when its own PID is not among them.
    An empty list (NVML sees not even the caller) is None: NVML cannot see processes here.
    """
    if nvml is None:
        try:
            nvml = importlib.import_module("pynvml")
        except ImportError:
            return None
    try:
        nvml.nvmlInit()
    except nvml.NVMLError:
        return None
    try:
        handle = nvml.nvmlDeviceGetHandleByUUID(uuid) if uuid else nvml.nvmlDeviceGetHandleByIndex(index)
        pids = {int(p.pid) for p in nvml.nvmlDeviceGetComputeRunningProcesses(handle)}
    except nvml.NVMLError:
        return None
    finally:
        with contextlib.suppress(nvml.NVMLError):
            nvml.nvmlShutdown()
    if not pids:
        return None
    return len(pids - {os.getpid()}) if os.getpid() in pids else len(pids) - 1
