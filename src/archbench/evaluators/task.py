"""The task interface and registry: what data a model trains on, how it is scored, which metrics it has.

A task is a frozen dataclass (its fields are its settings) registered in :data:`TASKS`. Given an
architecture, :meth:`Task.prepare` returns a :class:`TaskData` that yields seeded training batches and
a fixed validation set. Targets equal to :data:`IGNORE` are not scored, so language modelling
(``y`` shaped like ``x``) and classification (``y`` one label per example) share one loss.

A user task::

    @TASKS.register("mytask")
    @dataclass(frozen=True)
    class MyTask(Task):
        name: ClassVar[str] = "mytask"
        def prepare(self, arch): ...
"""

from __future__ import annotations

import hashlib
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

from archbench.errors import ConfigError
from archbench.registry import Registry

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn

    from archbench.search_space.architecture import Architecture

IGNORE = -100  # target value that is not scored (torch's cross_entropy ignore_index)

TASKS: Registry[type[Task]] = Registry("task")
# The built-ins by import path: naming them needs no torch; their modules register the classes on import.
for _name, _target in (
    ("charlm", "charlm:CharLM"),
    ("digits", "digits:Digits"),
    ("recall", "recall:Recall"),
    ("text", "text:Text"),
):
    TASKS.register_lazy(_name, f"archbench.evaluators.{_target}")


@dataclass(frozen=True)
class Batch:
    """Inputs ``x`` (token ids) and targets ``y`` (token or class ids; :data:`IGNORE` = not scored)."""

    x: Tensor
    y: Tensor

    @property
    def tokens(self) -> int:
        """Input tokens in the batch (what training throughput counts)."""
        return int(self.x.numel())


class TaskData(ABC):
    """A task's data bound to one architecture's sequence length and vocabulary."""

    seq_len: int

    @abstractmethod
    def train_batch(self, generator: torch.Generator, batch_size: int) -> Batch:
        """A random training batch drawn with ``generator`` (so a seed fixes the whole stream)."""

    @abstractmethod
    def val_batches(self, batch_size: int) -> Iterator[Batch]:
        """The fixed validation set, in a fixed order; never drawn from the training data."""


class HeldOutData(TaskData):
    """Task data whose validation set is held in memory as ``val_x`` / ``val_y``, served in order."""

    val_x: Tensor
    val_y: Tensor

    def val_batches(self, batch_size: int) -> Iterator[Batch]:
        for i in range(0, len(self.val_x), batch_size):
            yield Batch(self.val_x[i : i + batch_size], self.val_y[i : i + batch_size])


@dataclass(frozen=True)
class Task(ABC):
    """A task: data, loss and metrics. Subclasses are frozen dataclasses registered in :data:`TASKS`."""

    name: ClassVar[str] = ""
    metric_names: ClassVar[tuple[str, ...]] = ("val_loss", "val_acc")  # quality metrics it reports
    num_classes: ClassVar[int | None] = None  # None: causal decoder LM; K: encoder classifier

    batch_size: int = 32

    def build(self, arch: Architecture) -> nn.Module:
        """The model this task trains for ``arch`` (a decoder LM or an encoder classifier)."""
        from archbench.search_space import build

        return build(arch, num_classes=self.num_classes)

    @abstractmethod
    def prepare(self, arch: Architecture) -> TaskData:
        """The data for ``arch``; raises ConfigError when the architecture cannot do this task."""

    def summarize(self, loss_sum: float, correct: int, count: int) -> dict[str, float]:
        """Quality metrics from the summed validation loss (nats), correct predictions and scored targets."""
        out = {"val_loss": loss_sum / count, "val_acc": correct / count}
        return {k: v for k, v in out.items() if k in self.metric_names}

    def describe(self) -> str:
        """``name(setting=value, ...)`` for logs and results."""
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return f"{self.name}({args})"

    # ---- the data's identity and vocabulary ------------------------------------------------------------
    def vocab_size(self) -> int | None:
        """Token ids the task's inputs use: an architecture needs at least this vocabulary (a space's
        ``vocab_size: task`` takes it). None: not known without preparing the data."""
        return None

    def check(self, arch: Architecture) -> None:
        """Refuse, in one line, an architecture whose vocabulary cannot hold the task's tokens, before
        anything is trained or prepared."""
        need = self.vocab_size()
        if need is not None and arch.vocab_size < need:
            raise ConfigError(f"task {self.name} needs vocab_size >= {need}; the architecture has {arch.vocab_size}")

    def ready(self, progress: bool = True) -> None:
        """Do the task's shareable preparation once, before any trial (e.g. tokenize a corpus into the
        cache, with a progress bar), so trials only read it; bad data raises ConfigError here. Default:
        nothing to prepare."""
        return None

    def digest(self) -> str:
        """The identity of the data this task trains and validates on (a row's ``data_digest``): equal
        digests mean the same tokens in the same split. Cheap: nothing is trained. Default: the task's name
        and settings, which determine synthetic or bundled data (``batch_size`` is how training draws it,
        not the data)."""
        settings = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "batch_size"}
        return digest_of({"task": self.name, **settings})

    def data_columns(self) -> dict[str, Any]:
        """The row's columns about its data: ``data_digest``, and what a task adds (``text``: the
        validation set's ``val_bytes_per_token``)."""
        return {"data_digest": self.digest()}


def get_task(task: str | Task, **settings: Any) -> Task:
    """A task instance from its registered name (with settings) or an instance (returned as is)."""
    if isinstance(task, Task):
        if settings:
            raise ConfigError("settings are given with a task name, not with a Task instance")
        return task
    cls = TASKS.get(task)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(settings) - names)
    if unknown:
        raise ConfigError(f"task {task}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    return cls(**settings)


def digest_of(identity: Any) -> str:
    """16 hex digits of sha256 over ``identity`` as canonical JSON."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def seq_len_for(arch: Architecture, wanted: int | None, task: str) -> int:
    """The sequence length a task uses: ``wanted`` (or the architecture's ``max_seq_len``), checked."""
    seq_len = arch.max_seq_len if wanted is None else wanted
    if seq_len > arch.max_seq_len:
        raise ConfigError(f"task {task}: seq_len={seq_len} exceeds the architecture's max_seq_len={arch.max_seq_len}")
    return seq_len


def bits_per_byte(nats_per_byte: float) -> float:
    return nats_per_byte / math.log(2)
