"""Evaluator tests train real models on a small shared CPU: one torch thread each, restored afterwards.

Two OpenMP threads on two cores that other processes also use spin-wait at every barrier (a training
step measured 30x slower here); one thread is steady. Results do not depend on the thread count.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
