"""Shared test settings: deterministic torch, a CUDA marker that skips cleanly without a GPU."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("ARCHBENCH_FLEX_COMPILE", "0")  # eager FlexAttention on CPU unless a test asks


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
