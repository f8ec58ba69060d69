"""The NVML wrapper: readings, NVML errors translated into archbench errors, the null object."""

from __future__ import annotations

import pytest

from archbench.errors import ArchbenchError
from archbench.latency.nvml import NullGpu, NvmlError, NvmlGpu, open_gpu, throttle_names
from tests.latency.fake_nvml import NVML_ERROR_GPU_IS_LOST, NVML_ERROR_LIBRARY_NOT_FOUND, FakePynvml


def test_reads_a_gpu_through_the_module_it_is_given() -> None:
    fake = FakePynvml(power_w=250.0)
    gpu = open_gpu(0, nvml=fake)
    assert isinstance(gpu, NvmlGpu) and gpu.available
    assert gpu.name() == "NVIDIA H100 80GB HBM3"
    assert gpu.memory_total_mb() == 80 * 1024
    assert gpu.driver_version() == "560.35.03"
    assert gpu.power_w() == pytest.approx(250.0)
    assert gpu.energy_mj() >= fake.offset_mj
    assert (gpu.clocks().sm_mhz, gpu.clocks().mem_mhz) == (1980, 2619)
    assert fake.initialised == 1
    gpu.close()
    assert fake.initialised == 0


def test_missing_library_gives_the_null_object_with_the_reason() -> None:
    gpu = open_gpu(0, nvml=FakePynvml(init_error=NVML_ERROR_LIBRARY_NOT_FOUND))
    assert isinstance(gpu, NullGpu) and not gpu.available
    assert "nvmlInit" in gpu.reason and "Library Not Found" in gpu.reason
    assert gpu.energy_mj() is None and gpu.power_w() is None and gpu.throttle_reasons() is None


def test_this_machine_without_nvml_gets_a_null_gpu() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    gpu = open_gpu(0)
    assert not gpu.available and gpu.reason


def test_unsupported_sensors_read_as_none_not_zero() -> None:
    gpu = NvmlGpu(0, FakePynvml(energy_supported=False, power_supported=False))
    assert gpu.energy_mj() is None
    assert gpu.power_w() is None


def test_other_nvml_errors_become_archbench_errors_naming_the_call() -> None:
    gpu = NvmlGpu(0, FakePynvml(lost_after_s=0.0))
    with pytest.raises(NvmlError, match=r"nvmlDeviceGetPowerUsage failed: GPU is lost") as info:
        gpu.power_w()
    assert isinstance(info.value, ArchbenchError)
    assert NVML_ERROR_GPU_IS_LOST == 15


def test_out_of_range_index_is_an_error_and_shuts_nvml_down() -> None:
    fake = FakePynvml()
    with pytest.raises(NvmlError, match="index 3 out of range"):
        NvmlGpu(3, fake)
    assert fake.initialised == 0


def test_throttle_bits_are_named() -> None:
    assert throttle_names(0) == ()
    assert throttle_names(0x1 | 0x4) == ("gpu_idle", "sw_power_cap")
    assert throttle_names(0x40 | 0x10000)[-1] == "bits_0x10000"
