"""Quality evaluators: tasks (data, loss, metrics), the short-budget trainer and ``evaluate``.

    from archbench.evaluators import evaluate
    result = evaluate(arch, task="charlm", budget="steps=400", seed=0)   # -> TrialResult

Built-in tasks (registry :data:`TASKS`): ``charlm`` (default), ``recall``, ``digits``, ``text`` (your corpus).
"""

from __future__ import annotations

from archbench.evaluators import charlm, digits, recall, text  # noqa: F401  (register the built-in tasks)
from archbench.evaluators.budget import DEFAULT_BUDGET, Budget
from archbench.evaluators.charlm import CharLM
from archbench.evaluators.digits import Digits
from archbench.evaluators.evaluate import evaluate, resolve_device
from archbench.evaluators.quality import validate
from archbench.evaluators.recall import Recall
from archbench.evaluators.task import IGNORE, TASKS, Batch, Task, TaskData, get_task
from archbench.evaluators.text import Text
from archbench.evaluators.trainer import TrainConfig, TrainOutcome, train

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
