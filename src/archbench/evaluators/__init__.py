"""Quality evaluators: tasks (data, loss, metrics), the short-budget trainer and ``evaluate``.

    from archbench.evaluators import evaluate
    result = evaluate(arch, task="charlm", budget="steps=400", seed=0)   # -> TrialResult

Built-in tasks (registry :data:`TASKS`, registered by name in :mod:`~archbench.evaluators.task`):
``charlm`` (default), ``recall``, ``digits``, ``text`` (your corpus). The names below load on first use,
so that torch-free modules (``budget``, ``schedule``, ``task``) import without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archbench.lazy import lazy_exports

if TYPE_CHECKING:
    from archbench.evaluators.budget import DEFAULT_BUDGET, Budget
    from archbench.evaluators.charlm import CharLM
    from archbench.evaluators.digits import Digits
    from archbench.evaluators.evaluate import evaluate, resolve_device
    from archbench.evaluators.quality import validate
    from archbench.evaluators.recall import Recall
    from archbench.evaluators.task import IGNORE, TASKS, Batch, Task, TaskData, get_task
    from archbench.evaluators.text import Text
    from archbench.evaluators.trainer import TrainConfig, TrainOutcome, train

_IN = {
    ".budget": ("DEFAULT_BUDGET", "Budget"),
    ".charlm": ("CharLM",),
    ".digits": ("Digits",),
    ".evaluate": ("evaluate", "resolve_device"),
    ".quality": ("validate",),
    ".recall": ("Recall",),
    ".task": ("IGNORE", "TASKS", "Batch", "Task", "TaskData", "get_task"),
    ".text": ("Text",),
    ".trainer": ("TrainConfig", "TrainOutcome", "train"),
}
__getattr__, __dir__ = lazy_exports(__name__, _IN)

__all__ = [
    "DEFAULT_BUDGET",
    "IGNORE",
    "TASKS",
    "Batch",
    "Budget",
    "CharLM",
    "Digits",
    "Recall",
    "Task",
    "TaskData",
    "Text",
    "TrainConfig",
    "TrainOutcome",
    "evaluate",
    "get_task",
    "resolve_device",
    "train",
    "validate",
]
