"""The contract of a task, run on every entry of the registry: registering one tests it.

On a small architecture (:data:`ARCH`) a task prepares its data, draws training batches that follow the
seed, holds a fixed validation set with scored targets inside the vocabulary, names quality metrics the
metric table knows, and gives its model a finite loss and finite quality metrics after a few steps.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from archbench import Architecture
from archbench.evaluators import IGNORE, TASKS, Budget, Task, TrainConfig, get_task, train, validate
from archbench.metrics import names

ARCH = Architecture(depth=1, width=32, heads=2, max_seq_len=64)
NAMES = TASKS.names()


@pytest.mark.parametrize("name", NAMES)
def test_the_entry_is_a_frozen_task_named_as_registered(name: str) -> None:
    cls = TASKS.get(name)
    assert isinstance(cls, type) and issubclass(cls, Task) and dataclasses.is_dataclass(cls)
    task = get_task(name)
    assert task.name == name
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.batch_size = 1  # type: ignore[misc]
    assert task.metric_names and set(task.metric_names) <= set(names(source="validation"))
    assert "val_loss" in task.metric_names  # every task is scored by its loss


@pytest.mark.parametrize("name", NAMES)
def test_batches_follow_the_seed_and_fit_the_architecture(name: str) -> None:
    task = get_task(name)
    data = task.prepare(ARCH)
    a = data.train_batch(torch.Generator().manual_seed(1), 8)
    b = data.train_batch(torch.Generator().manual_seed(1), 8)
    c = data.train_batch(torch.Generator().manual_seed(2), 8)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and not torch.equal(a.x, c.x)
    assert a.x.dtype == torch.long and a.x.shape[0] == 8 and a.x.shape[1] <= ARCH.max_seq_len
    assert int(a.x.min()) >= 0 and int(a.x.max()) < ARCH.vocab_size
    # a decoder LM predicts a target per position; a classifier one per example
    assert a.y.shape == (a.x.shape if task.num_classes is None else (8,))


@pytest.mark.parametrize("name", NAMES)
def test_the_validation_set_is_fixed_and_scored(name: str) -> None:
    task = get_task(name)
    first = list(task.prepare(ARCH).val_batches(50))
    again = list(task.prepare(ARCH).val_batches(50))
    assert len(first) == len(again) >= 1
    assert all(torch.equal(p.x, q.x) and torch.equal(p.y, q.y) for p, q in zip(first, again, strict=True))
    y = torch.cat([b.y.reshape(-1) for b in first])
    scored = y[y != IGNORE]
    limit = task.num_classes if task.num_classes is not None else ARCH.vocab_size
    assert scored.numel() > 0 and int(scored.min()) >= 0 and int(scored.max()) < limit


@pytest.mark.parametrize("name", NAMES)
def test_a_few_steps_give_a_finite_loss_and_finite_quality(name: str) -> None:
    task = get_task(name)
    data = task.prepare(ARCH)
    torch.manual_seed(0)
    model = task.build(ARCH)
    device = torch.device("cpu")
    outcome = train(model, data, Budget("steps", 3), TrainConfig(), batch_size=8,
                    generator=torch.Generator().manual_seed(0), device=device)  # fmt: skip
    assert outcome.steps == 3 and outcome.diverged is None
    assert outcome.first_loss is not None and outcome.last_loss is not None
    assert math.isfinite(outcome.first_loss) and math.isfinite(outcome.last_loss)
    quality = validate(model, task, data, device, batch_size=64)
    assert set(quality) == set(task.metric_names)
    assert all(math.isfinite(v) for v in quality.values())
