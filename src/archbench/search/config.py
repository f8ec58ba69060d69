"""A search's settings as typed values: :class:`SearchConfig` validates them, derives what trials run with,
and says what defines the study (its identity in ``study.json``, :mod:`archbench.search.study`)."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from archbench.constraints import Constraint
from archbench.deploy import Deploy
from archbench.errors import ConfigError
from archbench.evaluators.budget import DEFAULT_BUDGET
from archbench.leaderboard.objectives import Objective
from archbench.search.executor import RayConfig
from archbench.search.fidelity import FidelityConfig
from archbench.search.strategy import STRATEGIES
from archbench.search.study import space_hash
from archbench.search.trial_evaluators import TRIAL_EVALUATORS, make_evaluator
from archbench.search.weights import check_keep_weights, weights_dir
from archbench.search_space.architecture import Architecture
from archbench.search_space.space import SearchSpace
from archbench.train_config import TrainConfig

EARLIER_DEFAULTS = ("optuna_tpe",)  # the CLI's default strategies before conf/search/default.yaml's, newest first


@dataclass(frozen=True)
class SearchConfig:
    """Everything one search needs, as typed values (the CLI builds it from the Hydra config)."""

    space: SearchSpace
    task: str = "charlm"
    budget: str = str(DEFAULT_BUDGET)
    strategy: str = "optuna_tpe"  # the CLI's default is conf/search/default.yaml's
    strategy_options: dict[str, Any] = field(default_factory=dict)
    default_strategy: bool = False  # the strategy is archbench's default, not the user's: see keeping_its_strategy
    objectives: tuple[Objective, ...] = (Objective("val_loss"), Objective("latency_ms"))
    n_trials: int = 16
    concurrency: int | None = None  # None: every slot the cluster has
    seed: int = 0
    study: str | None = None  # None: derived from task, space, strategy, fidelity and seed
    leaderboard: str = "runs/leaderboard"
    studies_root: str | None = None  # None: "studies" beside the leaderboard directory
    ray: RayConfig = field(default_factory=RayConfig)
    evaluator: str = "train"
    evaluator_options: dict[str, Any] = field(default_factory=dict)
    cache: bool = True
    progress: bool = True
    plot: bool = True
    constraints: tuple[Constraint, ...] = ()  # e.g. parse_constraints("latency_ms<=20, params<=1e6")
    seed_archs: tuple[Architecture, ...] = ()  # evaluated first, before anything the strategy proposes
    warm_start: bool = False  # teach the strategy every matching leaderboard row before the first ask
    allow_changes: bool = False  # resume even if the study's settings changed (the change is recorded)
    fidelity: FidelityConfig = field(default_factory=FidelityConfig)  # single, or the halving funnel
    timeout_s: float | None = None  # start nothing new after this long (running trials finish); None: no limit
    deploy: Deploy = field(default_factory=Deploy)  # how candidates are measured (modes, shape, eager/compile)
    train: TrainConfig = field(default_factory=TrainConfig)  # the optimiser and schedule of every trial
    keep_weights: str = "none"  # none | front | all (archbench.search.weights); not in identity()

    def __post_init__(self) -> None:
        if self.n_trials < 1:
            raise ConfigError(f"n_trials={self.n_trials}: must be at least 1")
        if self.concurrency is not None and self.concurrency < 1:
            raise ConfigError(f"concurrency={self.concurrency}: must be at least 1 (or null for every slot)")
        if self.strategy not in STRATEGIES:
            raise ConfigError(STRATEGIES.unknown_message(self.strategy))
        if len(self.objectives) < 1:
            raise ConfigError("objectives: give at least one, e.g. [val_loss:min, latency_ms:min]")
        if self.timeout_s is not None and (
            isinstance(self.timeout_s, bool) or not isinstance(self.timeout_s, int | float) or self.timeout_s <= 0
        ):
            raise ConfigError(f"timeout={self.timeout_s!r}: must be a positive number of seconds (or null)")
        check_keep_weights(self.keep_weights)
        self.fidelity.budgets(self.budget)  # a budget the rungs can scale, and rungs that stay distinct
        TRIAL_EVALUATORS.get(self.evaluator).check(self)  # what this evaluator cannot run (e.g. a schedule)
        for arch in self.seed_archs:
            if not self.space.contains(arch):
                raise ConfigError(
                    f"seed architecture {arch.arch_id} ({arch.describe()}) is not in space {self.space.name}"
                )

    def trial_train_config(self) -> TrainConfig:
        """``train`` as every trial runs it: with ``search.continuation`` and no ``train.warmup_steps``, the
        warm-up is ``warmup_frac`` of rung 0's steps at every rung (a continued rung must share it)."""
        kind = self.budget.partition("=")[0].strip()
        if self.train.schedule == "wsd" and kind == "seconds":
            raise ConfigError(f"train.schedule=wsd needs budget=steps=N or tokens=N, not {self.budget}")
        if not (self.fidelity.halving and self.fidelity.continuation):
            return self.train
        if self.train.schedule != "wsd":
            raise ConfigError(
                "search.continuation=true needs train.schedule=wsd: a cosine schedule spans its whole budget, "
                "so a short run cannot be continued into a longer one"
            )
        if self.train.warmup_steps is not None:
            return self.train
        if kind != "steps":
            raise ConfigError(
                f"search.continuation=true on budget={self.budget}: give train.warmup_steps=N (or budget=steps=N)"
            )
        from archbench.evaluators.budget import Budget

        first = Budget.parse(self.fidelity.budgets(self.budget)[0])
        return dataclasses.replace(self.train, warmup_steps=math.ceil(self.train.warmup_frac * first.amount))

    @property
    def measured_deploy(self) -> Deploy:
        """``deploy`` plus the modes the objectives and constraints need (decode_ms_per_token: decode), with
        only the named workloads they measure (decode_ms_per_token@chat8k: chat8k, with decode)."""
        return self.deploy.used_by(self.needed_metrics).for_metrics(self.needed_metrics)

    @property
    def needed_metrics(self) -> tuple[str, ...]:
        """The metrics the study ranks or judges on: its objectives' and constraints'."""
        return tuple(dict.fromkeys([o.name for o in self.objectives] + [c.metric for c in self.constraints]))

    @property
    def task_label(self) -> str:
        """The task the rows are recorded under (the evaluator's to say: ``sleep`` for the sleep evaluator)."""
        return TRIAL_EVALUATORS.get(self.evaluator).task_of(self)

    @property
    def study_name(self) -> str:
        funnel = "-halving" if self.fidelity.halving else ""
        return self.study or f"{self.task_label}-{self.space.name}-{self.strategy}{funnel}-s{self.seed}"

    @property
    def study_dir(self) -> Path:
        root = Path(self.studies_root) if self.studies_root else Path(self.leaderboard).parent / "studies"
        return root / self.study_name

    @property
    def weights_dir(self) -> Path:
        """Where ``keep_weights`` puts the study's trained weights (:mod:`archbench.search.weights`)."""
        return weights_dir(self.leaderboard, self.study_name)

    def resolved(self, recorded: Mapping[str, Any] | None) -> SearchConfig:
        """The settings left to their defaults decided for the study whose ``study.json`` holds ``recorded``
        (None: a new study); see :meth:`FidelityConfig.resolved`."""
        fidelity = self.fidelity.resolved((recorded or {}).get("fidelity"))
        return self if fidelity == self.fidelity else dataclasses.replace(self, fidelity=fidelity)

    @cached_property
    def data_digest(self) -> str | None:
        """The identity of the data the trials train on (their rows' ``data_digest``; None for an evaluator
        that trains on none). Cheap next to preparing it: a text corpus is hashed, not tokenized (and an
        unchanged one is not read again); a source that is not there is a ConfigError here."""
        return make_evaluator(self).data_digest()

    def keeping_its_strategy(self, saved_of: Any) -> SearchConfig:
        """With archbench's default strategy (``default_strategy``, not one the user named), a study started
        under an earlier default resumes with the strategy it recorded instead of being refused; without a
        ``study`` name, a study named after an earlier default (:data:`EARLIER_DEFAULTS`) is the one the
        same command resumes when none is named after the current default. ``saved_of(config)`` is what
        ``config``'s study recorded (None: no such study). Said once, on stderr."""
        if not self.default_strategy:
            return self
        named = [self] if self.study else [self, *(dataclasses.replace(self, strategy=s) for s in EARLIER_DEFAULTS)]
        for candidate in named:
            saved = saved_of(candidate)
            if saved is None:
                continue
            was = saved.get("strategy", self.strategy)
            if was == self.strategy or was not in STRATEGIES:
                return self
            logging.getLogger(__name__).warning(
                "study %s was started with strategy %s (the default then): it resumes with it; the default is "
                "now %s (start a new study for it: study.name=NAME)",
                candidate.study_name,
                was,
                self.strategy,
            )
            options = dict(saved.get("strategy_options") or {})
            return dataclasses.replace(self, strategy=was, strategy_options=options)
        return self

    def identity(self) -> dict[str, Any]:
        """What defines the study (see :mod:`archbench.search.study`)."""
        fields = self.space.to_dict()["fields"]
        data = self.data_digest
        return {
            "space": fields,
            "space_hash": space_hash(fields),
            "fidelity": self.fidelity.identity(),
            "task": self.task,
            "budget": self.budget,
            "objectives": [str(o) for o in self.objectives],
            "constraints": [str(c) for c in self.constraints],
            "strategy": self.strategy,
            "strategy_options": self.strategy_options,
            "seed": self.seed,
            "evaluator": self.evaluator,
            "evaluator_options": {k: v for k, v in self.evaluator_options.items() if k != "rows"},
            # only when it is not the default, so that studies from before the setting existed resume
            **({"deploy": self.measured_deploy.to_dict()} if self.measured_deploy != Deploy() else {}),
            **({"train_schedule": self.train.label()} if self.train != TrainConfig() else {}),
            **({"data_digest": data} if data is not None else {}),  # absent from older study.json: accepted
        }
