"""The hardware fingerprint attached to every result: on what, with which software, it was measured."""

from __future__ import annotations

import os
import platform
import socket
from functools import lru_cache
from typing import Any

import torch

from archbench.latency.nvml import Gpu, NullGpu, open_gpu
from archbench.version import archbench_version


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def hardware_fingerprint(device: torch.device | str = "cpu", gpu: Gpu | None = None) -> dict[str, Any]:
    """Flat fingerprint columns for ``device``; GPU fields are None on a CPU. ``gpu``: an open NVML handle."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    cuda_ok = torch.cuda.is_available()
    if gpu is None:
        gpu = open_gpu(device.index or 0) if cuda else NullGpu("measured on cpu")
    fp: dict[str, Any] = {
        "device_kind": device.type,
        "device_name": cpu_model(),
        "gpu_count": torch.cuda.device_count() if cuda_ok else 0,
        "gpu_memory_mb": None,
        "compute_capability": None,
        "gpu_uuid": None,  # which physical GPU: rows from one card can be told apart on a multi-GPU node
        "driver_version": gpu.driver_version() if gpu.available else None,
        "cuda_version": torch.version.cuda,
        "torch_version": torch.__version__,
        "archbench_version": archbench_version(),
        "python_version": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "hostname": socket.gethostname(),
        "os": platform.platform(),
        "torch_threads": torch.get_num_threads(),
    }
    if cuda and cuda_ok:
        props = torch.cuda.get_device_properties(device)
        fp["device_name"] = props.name
        fp["gpu_memory_mb"] = round(props.total_memory / 2**20)
        fp["compute_capability"] = f"{props.major}.{props.minor}"
        uuid = getattr(props, "uuid", None)
        fp["gpu_uuid"] = f"GPU-{uuid}" if uuid is not None and not str(uuid).startswith("GPU-") else uuid
    return fp
