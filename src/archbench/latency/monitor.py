"""Named measurement windows in Zeus's shape: ``begin_window(name)`` / ``end_window(name)`` -> a frozen
:class:`WindowResult` with the wall time, the energy and what NVML said about clocks and throttling.

Energy comes from NVML's total-energy counter when the GPU has one. The counter updates about every
100 ms, so a window shorter than ``min_energy_window_s`` gives no energy (``None`` with the reason)
rather than a number dominated by the counter's step. During every window on a GPU a background thread
samples power, clocks and throttle reasons; where the counter is missing the integrated power samples
are the energy. Without NVML (a CPU machine) every GPU reading is ``None`` with the reason.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from archbench.errors import ArchbenchError
from archbench.latency.nvml import BENIGN_THROTTLE, Gpu, NullGpu, throttle_names


@dataclass(frozen=True)
class WindowResult:
    """What one window measured. Energies in joules, power in watts; ``None`` comes with a reason."""

    name: str
    duration_s: float
    energy_j: float | None
    energy_source: str | None  # "counter" | "power_samples" | None
    energy_reason: str  # why energy_j is None ("" when measured)
    sampled_energy_j: float | None  # mean power of the samples (trapezoid rule) x duration: the counter's cross-check
    avg_power_w: float | None
    power_samples: int
    sm_clock_mhz_min: int | None
    sm_clock_mhz_max: int | None
    mem_clock_mhz: int | None
    throttle_reasons: tuple[str, ...]  # every reason seen during the window
    throttled: bool  # a non-benign reason (power cap, thermal, hw slowdown) was seen

    def energy_above(self, idle_power_w: float | None) -> float | None:
        """Energy above an idle power over this window (J), or None when either is unknown."""
        if self.energy_j is None or idle_power_w is None:
            return None
        return self.energy_j - idle_power_w * self.duration_s


class _Sampler(threading.Thread):
    """Polls power, SM clock and throttle reasons every ``period_s`` until stopped."""

    def __init__(self, gpu: Gpu, period_s: float, clock: Callable[[], float]) -> None:
        super().__init__(daemon=True, name="archbench-nvml-sampler")
        self.gpu, self.period_s, self.clock = gpu, period_s, clock
        self.power: list[tuple[float, float]] = []
        self.sm_clocks: list[int] = []
        self.mem_clocks: list[int] = []
        self.reasons = 0
        self.error: BaseException | None = None
        self._stop_event = threading.Event()

    def sample(self) -> None:
        power = self.gpu.power_w()
        if power is not None:
            self.power.append((self.clock(), power))
        clocks = self.gpu.clocks()
        if clocks.sm_mhz is not None:
            self.sm_clocks.append(clocks.sm_mhz)
        if clocks.mem_mhz is not None:
            self.mem_clocks.append(clocks.mem_mhz)
        reasons = self.gpu.throttle_reasons()
        if reasons is not None:
            self.reasons |= reasons

    def run(self) -> None:
        try:
            while not self._stop_event.wait(self.period_s):
                self.sample()
        except BaseException as exc:  # reported by stop(); a sampler must never die silently
            self.error = exc

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        if self.error is not None:
            raise self.error


def integrate(samples: list[tuple[float, float]]) -> float | None:
    """Trapezoid integral of (time_s, power_w) samples in joules; None with fewer than two."""
    if len(samples) < 2:
        return None
    return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in itertools.pairwise(samples))


class Monitor:
    """Opens and closes named windows on one device. Not thread-safe: one caller at a time.

    ``sync`` is called at both ends of a window (``torch.cuda.synchronize`` on a GPU) so that the
    window covers the device's work, not just its queueing.
    """

    def __init__(
        self,
        gpu: Gpu | None = None,
        *,
        sync: Callable[[], None] | None = None,
        min_energy_window_s: float = 1.0,
        sample_period_s: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gpu: Gpu = gpu if gpu is not None else NullGpu("no GPU given to the monitor")
        self.sync = sync or (lambda: None)
        self.min_energy_window_s = min_energy_window_s
        self.sample_period_s = sample_period_s
        self.clock = clock
        self._open: dict[str, tuple[float, int | None, _Sampler | None]] = {}

    def begin_window(self, name: str) -> None:
        if name in self._open:
            raise ArchbenchError(f"measurement window {name!r} is already open")
        sampler = None
        if self.gpu.available:
            sampler = _Sampler(self.gpu, self.sample_period_s, self.clock)
            sampler.sample()  # one reading at the very start
        self.sync()
        energy0 = self.gpu.energy_mj()
        start = self.clock()
        if sampler is not None:
            sampler.start()
        self._open[name] = (start, energy0, sampler)

    def end_window(self, name: str) -> WindowResult:
        if name not in self._open:
            raise ArchbenchError(f"measurement window {name!r} was never begun (open: {sorted(self._open)})")
        start, energy0, sampler = self._open.pop(name)
        self.sync()
        end = self.clock()
        energy1 = self.gpu.energy_mj()
        if sampler is not None:
            sampler.stop()
            sampler.sample()  # and one at the very end
        duration = end - start
        return self._result(name, duration, energy0, energy1, sampler)

    def _result(
        self, name: str, duration: float, energy0: int | None, energy1: int | None, sampler: _Sampler | None
    ) -> WindowResult:
        sampled = None
        if sampler is not None and (integral := integrate(sampler.power)) is not None:
            span = sampler.power[-1][0] - sampler.power[0][0]  # samples bracket the window: scale to it
            sampled = integral / span * duration if span > 0 else None
        energy, source, reason = None, None, ""
        if not self.gpu.available:
            reason = f"no GPU energy reading on this machine: {self.gpu.reason}"
        elif duration < self.min_energy_window_s:
            reason = (
                f"window {duration:.3f} s is shorter than the {self.min_energy_window_s:g} s the energy "
                "counter needs (it updates about every 100 ms)"
            )
        elif energy0 is not None and energy1 is not None:
            energy, source = (energy1 - energy0) / 1000.0, "counter"
        elif sampled is not None:
            energy, source = sampled, "power_samples"
        else:
            reason = "this GPU reports neither the total-energy counter nor power"
        reasons = throttle_names(sampler.reasons) if sampler is not None else ()
        return WindowResult(
            name=name,
            duration_s=duration,
            energy_j=energy,
            energy_source=source,
            energy_reason=reason,
            sampled_energy_j=sampled,
            avg_power_w=energy / duration if energy is not None and duration > 0 else None,
            power_samples=len(sampler.power) if sampler is not None else 0,
            sm_clock_mhz_min=min(sampler.sm_clocks) if sampler is not None and sampler.sm_clocks else None,
            sm_clock_mhz_max=max(sampler.sm_clocks) if sampler is not None and sampler.sm_clocks else None,
            mem_clock_mhz=max(sampler.mem_clocks) if sampler is not None and sampler.mem_clocks else None,
            throttle_reasons=reasons,
            throttled=any(r not in BENIGN_THROTTLE for r in reasons),
        )

    def idle_power_w(self, seconds: float = 0.5) -> tuple[float | None, str]:
        """Mean power over ``seconds`` with nothing running (call it before the work), with a reason when None.

        Uses the energy counter when the span is long enough for it, the power samples otherwise.
        """
        if not self.gpu.available:
            return None, f"no GPU power reading on this machine: {self.gpu.reason}"
        self.begin_window("__idle__")
        time.sleep(seconds)
        window = self.end_window("__idle__")
        if window.energy_j is not None:
            return window.energy_j / window.duration_s, ""
        if window.sampled_energy_j is not None:
            return window.sampled_energy_j / window.duration_s, ""
        return None, window.energy_reason or "no power samples during the idle window"
