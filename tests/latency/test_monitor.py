"""Named windows: the API's contract, and the energy rules on a fake counter that updates every 100 ms."""

from __future__ import annotations

import dataclasses
import time

import pytest

from archbench.errors import ArchbenchError
from archbench.latency.monitor import Monitor, integrate
from archbench.latency.nvml import NullGpu, NvmlGpu
from tests.latency.fake_nvml import FakePynvml


def _monitor(fake: FakePynvml, **kwargs: float) -> Monitor:
    return Monitor(NvmlGpu(0, fake), sample_period_s=0.01, **kwargs)


def test_window_result_is_frozen_and_names_are_checked() -> None:
    monitor = Monitor(NullGpu("no gpu here"))
    monitor.begin_window("a")
    with pytest.raises(ArchbenchError, match="already open"):
        monitor.begin_window("a")
    monitor.begin_window("b")  # windows may overlap
    result = monitor.end_window("a")
    monitor.end_window("b")
    with pytest.raises(ArchbenchError, match="never begun"):
        monitor.end_window("a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.energy_j = 1.0  # type: ignore[misc]


def test_without_a_gpu_energy_is_none_with_the_reason() -> None:
    monitor = Monitor(NullGpu("NVML Shared Library Not Found"))
    monitor.begin_window("w")
    time.sleep(0.01)
    result = monitor.end_window("w")
    assert result.duration_s >= 0.01
    assert result.energy_j is None and result.avg_power_w is None
    assert "NVML Shared Library Not Found" in result.energy_reason
    assert result.throttled is False and result.power_samples == 0


def test_a_window_shorter_than_the_counter_needs_gives_no_energy() -> None:
    # 50 ms: the counter moves at most once, so its delta is 0 or a whole 100 ms step (0 % or 200 % off).
    monitor = _monitor(FakePynvml(power_w=300.0), min_energy_window_s=1.0)
    monitor.begin_window("short")
    time.sleep(0.05)
    result = monitor.end_window("short")
    assert result.energy_j is None
    assert "shorter than the 1 s" in result.energy_reason


def test_a_long_window_reads_the_counter_within_its_step() -> None:
    fake = FakePynvml(power_w=lambda t: 200.0 + 100.0 * (int(t * 7) % 2))  # 200/300 W square wave
    monitor = _monitor(fake, min_energy_window_s=1.0)
    start = time.monotonic()
    monitor.begin_window("long")
    time.sleep(1.05)
    result = monitor.end_window("long")
    truth = fake.true_energy_j(start, time.monotonic())
    assert result.energy_source == "counter"
    assert result.energy_j == pytest.approx(truth, rel=0.1)  # one 100 ms step of ~1 s at most
    assert result.avg_power_w == pytest.approx(result.energy_j / result.duration_s)
    assert result.sampled_energy_j == pytest.approx(truth, rel=0.1)  # the cross-check agrees too
    assert result.power_samples > 20
    assert (result.sm_clock_mhz_min, result.mem_clock_mhz) == (1980, 2619)


def test_power_samples_stand_in_where_the_counter_is_missing() -> None:
    fake = FakePynvml(power_w=150.0, energy_supported=False)
    monitor = _monitor(fake, min_energy_window_s=0.2)
    monitor.begin_window("w")
    time.sleep(0.3)
    result = monitor.end_window("w")
    assert result.energy_source == "power_samples"
    assert result.energy_j == pytest.approx(150.0 * result.duration_s, rel=0.1)


def test_idle_power_and_energy_above_idle() -> None:
    fake = FakePynvml(power_w=80.0, energy_supported=False)
    monitor = _monitor(fake)
    idle, reason = monitor.idle_power_w(0.2)
    assert reason == "" and idle == pytest.approx(80.0)
    assert Monitor(NullGpu("none")).idle_power_w(0.01)[0] is None


def test_throttling_during_the_window_is_flagged_but_idle_is_benign() -> None:
    for bits, throttled in ((0x4, True), (0x1, False), (0x0, False)):
        monitor = _monitor(FakePynvml(throttle_bits=bits))
        monitor.begin_window("w")
        time.sleep(0.03)
        result = monitor.end_window("w")
        assert result.throttled is throttled, bits


def test_a_gpu_lost_mid_window_raises_an_archbench_error() -> None:
    monitor = _monitor(FakePynvml(lost_after_s=0.05))
    monitor.begin_window("w")
    time.sleep(0.1)
    with pytest.raises(ArchbenchError, match="GPU is lost"):
        monitor.end_window("w")


def test_integrate_is_the_trapezoid_rule() -> None:
    assert integrate([(0.0, 100.0)]) is None
    assert integrate([(0.0, 100.0), (1.0, 200.0), (3.0, 200.0)]) == pytest.approx(150.0 + 400.0)
