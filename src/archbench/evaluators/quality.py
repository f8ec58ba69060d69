"""Validation quality of a (float or quantized) model on a task's fixed validation set."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archbench.evaluators.task import IGNORE, Task, TaskData


@torch.no_grad()
def validate(model: nn.Module, task: Task, data: TaskData, device: torch.device, batch_size: int) -> dict[str, float]:
    """The task's quality metrics (``val_loss`` and ``val_bpb`` / ``val_acc``) over the whole validation set.

    The model runs in eval mode (no drop_path) at its own precision; the loss is computed in fp32.
    """
    was_training = model.training
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    try:
        for batch in data.val_batches(batch_size):
            x, y = batch.x.to(device), batch.y.to(device).reshape(-1)
            logits = model(x).float()
            logits = logits.reshape(-1, logits.shape[-1])
            scored = y != IGNORE
            loss_sum += float(F.cross_entropy(logits, y, ignore_index=IGNORE, reduction="sum"))
            correct += int((logits.argmax(dim=-1)[scored] == y[scored]).sum())
            count += int(scored.sum())
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError(f"task {task.name}: the validation set has no scored targets")
    return task.summarize(loss_sum, correct, count)
