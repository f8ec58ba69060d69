"""The ask/tell contract between a search strategy and the driver loop.

A strategy sees the search space only through its encoding (integer vectors of choice indices, on
which the Optuna strategies build their distributions) and the objective values it is told; the driver
owns evaluation, Ray, caching and resume.

Contract (kept by every registered strategy; ``tests/search/test_strategies.py`` runs it on all):

* ``ask()`` returns the next :class:`Suggestion` (a new trial number and a valid Architecture), or
  ``None`` when the strategy must first hear back about what is in flight (e.g. a generation barrier).
* ``tell(feedback)`` reports one finished trial, in any order. Failed trials carry ``values=None``.
* ``pending()`` lists suggestions asked but not told, as persisted: after a crash the driver re-runs
  them (or tells them from the leaderboard when their row landed before the crash).
* ``told()`` counts trials told so far; state is persisted under ``state_dir`` after every ask and tell
  so that a driver killed with SIGKILL loses nothing that was told.
* ``enqueue(arch)`` puts a seed architecture first in line; ``warm(arch, values)`` teaches the strategy a
  result from an earlier study (warm start) without running it or counting it as a trial; ``learn(arch,
  values)`` teaches a told architecture's later, better-trained result (a funnel's higher rung).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archbench.leaderboard.objectives import Objective
from archbench.registry import Registry
from archbench.search_space.architecture import Architecture
from archbench.search_space.space import SearchSpace

STRATEGIES: Registry = Registry("search strategy")
POPULATION_SIZE = 16  # a population-based strategy's generation when options give no population_size


@dataclass(frozen=True)
class Suggestion:
    """Trial ``number`` of the study should evaluate ``arch``."""

    number: int
    arch: Architecture


@dataclass(frozen=True)
class Feedback:
    """What one trial gave: objective values in the objectives' own senses, or None if it failed."""

    suggestion: Suggestion
    values: tuple[float, ...] | None
    status: str = "ok"
    violation: float = 0.0  # > 0: the trial broke a constraint by this much (infeasible)

    @property
    def ok(self) -> bool:
        return self.values is not None


class Strategy:
    """Base class: subclass, implement ask/tell/pending/told, register with ``@STRATEGIES.register``."""

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        seed: int,
        state_dir: Path,
        study: str = "study",
        **options: Any,
    ) -> None:
        self.space = space
        self.objectives = tuple(objectives)
        self.seed = seed
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.study = study
        self.options = options

    @property
    def population_size(self) -> int:
        """The ``population_size`` option of a population-based strategy (NSGA-II/III, AGE-MOEA)."""
        return int(self.options.get("population_size", POPULATION_SIZE))

    def ask(self) -> Suggestion | None:
        raise NotImplementedError

    def tell(self, feedback: Feedback) -> None:
        raise NotImplementedError

    def pending(self) -> list[Suggestion]:
        raise NotImplementedError

    def told(self) -> int:
        """Trials of this study told so far (warm-start records not included)."""
        raise NotImplementedError

    def enqueue(self, arch: Architecture) -> None:
        """Evaluate ``arch`` before anything the strategy would propose (a seed architecture)."""
        raise NotImplementedError

    def warm(self, arch: Architecture, values: tuple[float, ...], violation: float = 0.0) -> None:
        """Learn from a result measured elsewhere (an earlier study) without running it again.

        Optional: strategies that do not learn (random search) only avoid re-proposing ``arch``.
        """

    def learn(self, arch: Architecture, values: tuple[float, ...]) -> None:
        """A further result for an architecture already told (a funnel candidate promoted after it was
        told its lower rung's values): learn it as an extra record, not a trial. Optional."""

    def close(self) -> None:
        """Release resources (files, storages). Optional."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old or the new file, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
