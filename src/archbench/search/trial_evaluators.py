"""What the driver runs for one trial inside a Ray worker: a picklable callable ``(arch, study, trial)``.

* ``train`` (default): :func:`archbench.evaluators.evaluate`, real training and measurement.
* ``lookup``: answers from an existing leaderboard, a tabular benchmark made of real measurements, so
  strategies can be compared in seconds on numbers that were measured once.
* ``cost``: measures the untrained model (:func:`archbench.evaluators.cost.measure_cost`), trains nothing: a
  cost-only search (latency, memory, decode cache at every named workload) where training is too slow.
* ``sleep``: sleeps a fixed time and returns the architecture's parameter count and depth as
  objectives; it exists to measure the driver's own overhead (benchmarks/driver_scaling.py).

Each keeps the contract of :class:`archbench.search.evaluator.TrialEvaluator` (what the loop asks of
it); ``tests/conformance/test_trial_evaluators.py`` checks every entry of :data:`TRIAL_EVALUATORS`.
Over 400 lines because the registry's entries live together: each is short and they share the helpers above.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from archbench.constraints import parse_constraints
from archbench.deploy import Deploy
from archbench.errors import ConfigError
from archbench.evaluators.budget import DEFAULT_BUDGET
from archbench.metrics import TRAINED_ONLY, of_column, split_workload
from archbench.registry import Registry
from archbench.run_settings import RunSettings
from archbench.search.evaluator import Probe, TrialEvaluator
from archbench.search.study_metrics import check_deployment, check_metrics
from archbench.search_space.architecture import Architecture
from archbench.train_config import TrainConfig
from archbench.trial import METRICS, TrialResult, utc_now

if TYPE_CHECKING:
    from archbench.evaluators.task import Task
    from archbench.search.config import SearchConfig
    from archbench.search_space.space import SearchSpace

TRIAL_EVALUATORS: Registry[type[TrialEvaluator]] = Registry("trial evaluator")


def make_evaluator(config: SearchConfig) -> TrialEvaluator:
    """The evaluator ``config.evaluator`` names, built from ``config``."""
    return TRIAL_EVALUATORS.get(config.evaluator).from_search(config)


def _with_options(cls: Any, config: SearchConfig, base: dict[str, Any]) -> Any:
    """``cls(**base)`` with ``config.evaluator_options`` over it; an option that is not a field is refused."""
    opts = dict(config.evaluator_options)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(opts) - fields
    if unknown:
        raise ConfigError(f"evaluator {config.evaluator}: unknown options {sorted(unknown)}; allowed: {sorted(fields)}")
    return cls(**{**base, **opts})


def _keeps_no_state(evaluator: Any) -> ConfigError:
    return ConfigError(f"evaluator {type(evaluator).__name__} cannot run search.continuation=true (it keeps no state)")


def _keeps_no_weights(name: str, keep: str = "front|all") -> ConfigError:
    return ConfigError(
        f"evaluator {name} cannot run search.keep_weights={keep}: it trains no model, so it has no weights (use none)"
    )


def _check_no_weights(config: SearchConfig) -> None:
    """What an evaluator that trains no model refuses: any ``search.keep_weights`` but none."""
    if config.keep_weights != "none":
        raise _keeps_no_weights(config.evaluator, config.keep_weights)


def failed_result(
    arch: Architecture, task: str, budget: str, study: str, trial: int, seed: int, status: str, reason: str
) -> TrialResult:
    """A result for a trial that produced nothing: every metric null with the reason."""
    return TrialResult(
        arch=arch,
        task=task,
        status=status,
        reason=reason,
        study=study,
        trial=trial,
        budget=budget,
        seed=seed,
        metrics=dict.fromkeys(METRICS),
        null_reasons=dict.fromkeys(METRICS, f"{status}: {reason}"),
    )


def flag_shared_gpu(result: TrialResult, nvml: Any = None) -> TrialResult:
    """``result`` with ``gpu_other_processes`` in its hardware columns (see :class:`TrainEvaluator`)."""
    from archbench.latency.nvml import other_compute_processes

    try:
        others = other_compute_processes(result.hardware.get("gpu_uuid"), nvml=nvml)
    except Exception:  # a flag is best effort: never lose the trial over it
        others = None
    return dataclasses.replace(result, hardware={**result.hardware, "gpu_other_processes": others})


class _BuildsModels:
    """What the evaluators that build the task's model on this worker share (``train`` and ``cost``): the
    device's fingerprint and quantizations, the space it runs, the task's data."""

    task: str
    threads: int
    task_options: Mapping[str, Any]

    @classmethod
    def task_of(cls, config: SearchConfig) -> str:
        return config.task

    def probe(self) -> Probe:
        """The fingerprint a trial's rows will carry (same device, same thread count) and the device's quants."""
        import torch

        from archbench.latency import hardware_fingerprint
        from archbench.search_space.quantize import supported_quants

        torch.set_num_threads(max(1, self.threads))
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return Probe(dict(hardware_fingerprint(device)), supported_quants(device))

    def space_for(self, config: SearchConfig, probe: Probe) -> SearchSpace:
        check_metrics(config, probe.hardware.get("device_kind"))
        return config.space.for_device(probe.quants or {})

    def data_digest(self) -> str | None:
        """The task's data identity, as :func:`~archbench.evaluators.evaluate` records it on each row."""
        return self.get_task().digest()

    def ready(self, progress: bool) -> None:
        """The task's data, prepared once (:meth:`~archbench.evaluators.task.Task.ready`)."""
        self.get_task().ready(progress=progress)

    def get_task(self) -> Task:
        """The task it builds models for, with its settings."""
        from archbench.evaluators import get_task

        return get_task(self.task, **self.task_options)


@TRIAL_EVALUATORS.register("train")
@dataclass(frozen=True)
class TrainEvaluator(_BuildsModels):
    """Train for ``budget`` on ``task`` and measure on this worker's device (its GPU if Ray gave one).

    On a GPU the row's ``gpu_other_processes`` counts the compute processes other than this worker that
    NVML sees on that GPU right after the trial (measurement is the last thing ``evaluate`` does): more
    than 0 flags a measurement that shared its device with someone else; null where NVML cannot tell.

    A funnel's rungs with ``search.continuation`` (``state_dir`` set): a rung that is not the top writes
    the trial's training state to ``<state_dir>/<trial>-<budget>.pt`` where its cool-down begins
    (``save_state``), and a promoted rung starts from the state of ``resume_budget`` when this worker
    can read it (a node without the study's directory trains from scratch: the same model, slower),
    then deletes it (it is consumed).

    ``weights_dir`` set (``search.keep_weights``): the trained float weights are kept there as safetensors
    (:func:`~archbench.interop.weights.save_trained`) and the row records the file.
    """

    task: str = "charlm"
    budget: str = str(DEFAULT_BUDGET)
    seed: int = 0
    measure: bool = True
    threads: int = 1
    task_options: Mapping[str, Any] = field(default_factory=dict)  # the task's settings (task.data=..., ...)
    constraints: tuple[str, ...] = ()  # checked before training where they can be (see evaluate())
    deploy: Deploy | None = None  # the modes and shape measured (None: prefill at max_seq_len, eager)
    validate_quant: bool = True  # False: *_quant quality left null (a funnel's screening rungs)
    screen: bool = False  # True: a quick measurement (a funnel's first rung; see evaluators.measurement.SCREEN)
    train: TrainConfig | None = None  # optimiser and schedule (None: the default TrainConfig)
    state_dir: str | None = None  # a funnel's continued rungs: where training states are kept
    save_state: bool = False  # write the state where the cool-down begins (a rung below the top)
    resume_budget: str | None = None  # start from the state the rung of this budget wrote
    weights_dir: str | None = None  # search.keep_weights: where the trained weights are kept (None: nowhere)
    cacheable: ClassVar[bool] = True
    quality: ClassVar[bool] = True

    @classmethod
    def check(cls, config: SearchConfig) -> None:
        """Objectives and constraints must be metrics it reports, the schedule must fit the budget (and the
        funnel's continuation), and the deployment must fit every sequence length of the space."""
        check_metrics(config, None)
        config.trial_train_config()
        check_deployment(config)

    @classmethod
    def from_search(cls, config: SearchConfig) -> TrainEvaluator:
        return _with_options(cls, config, {
            "task": config.task, "budget": config.budget, "seed": config.seed, "threads": config.ray.cpus_per_trial,
            "constraints": tuple(str(c) for c in config.constraints), "deploy": config.measured_deploy,
            "train": config.trial_train_config(),
        })  # fmt: skip

    def state_path(self, trial: int, budget: str) -> Path | None:
        """Where trial ``trial``'s state after the rung of ``budget`` is kept (None: no state_dir)."""
        return Path(self.state_dir) / f"{trial}-{budget}.pt" if self.state_dir else None

    def __call__(self, arch: Architecture, study: str, trial: int) -> TrialResult:
        import torch

        from archbench.evaluators import evaluate

        torch.set_num_threads(max(1, self.threads))
        device = "cuda" if torch.cuda.is_available() else "cpu"
        save = self.state_path(trial, self.budget) if self.save_state else None
        resume = self.state_path(trial, self.resume_budget) if self.resume_budget else None
        task = self.get_task()
        result = evaluate(
            arch, task, self.budget, seed=self.seed, device=device, study=study, trial=trial,
            measure=self.measure, config=self.train, constraints=self.constraints, deploy=self.deploy,
            validate_quant=self.validate_quant, screen=self.screen, save_state=save, resume_from=resume,
            save_weights=self.weights_dir,
        )  # fmt: skip
        if resume is not None:
            resume.unlink(missing_ok=True)  # consumed: this rung wrote its own if it is not the top
        if device == "cuda" and self.measure:
            result = flag_shared_gpu(result)
        return result

    def at_budget(
        self, budget: str, measure: bool, validate_quant: bool = True, screen: bool = False
    ) -> TrainEvaluator:
        """This evaluator at another budget. Without ``measure`` it only trains, and leaves the cost
        constraints to the rung that measured (their metrics do not depend on the weights); without
        ``validate_quant`` it does not score the quantized model; with ``screen`` it measures quickly."""
        return dataclasses.replace(
            self, budget=budget, measure=self.measure and measure, constraints=self.constraints if measure else (),
            validate_quant=self.validate_quant and validate_quant, screen=screen,
        )  # fmt: skip

    def continued(self, state_dir: str, save_state: bool, resume_budget: str | None) -> TrainEvaluator:
        return dataclasses.replace(self, state_dir=state_dir, save_state=save_state, resume_budget=resume_budget)

    def keeping_weights(self, weights_dir: str) -> TrainEvaluator:
        return dataclasses.replace(self, weights_dir=weights_dir)

    def run_settings(self) -> RunSettings:
        """As :func:`~archbench.evaluators.evaluate` records them (it takes them from the same place)."""
        needed = (c.metric for c in parse_constraints(self.constraints or None))
        return RunSettings.planned(self.train, self.deploy, needed, self.measure, self.screen)


@TRIAL_EVALUATORS.register("cost")
@dataclass(frozen=True)
class CostEvaluator(_BuildsModels):
    """Measure the untrained model on this worker's device (:func:`~archbench.evaluators.cost.measure_cost`):
    every deployment and named workload the study asks for, at the measurement's full effort; trains nothing.

    Its rows' budget is ``none`` and name no training recipe, so the cache keeps them apart from trained ones.
    A study that ranks or judges on a metric only training gives (:data:`archbench.metrics.TRAINED_ONLY`: the
    validation and training metrics), or that runs a funnel of training budgets, is refused at config time.
    """

    task: str = "charlm"  # the task the model is built for (its vocabulary, its classes)
    budget: str = "none"  # nothing is spent; a funnel's rung (refused in a search) would set it
    seed: int = 0
    measure: bool = True
    threads: int = 1
    task_options: Mapping[str, Any] = field(default_factory=dict)
    constraints: tuple[str, ...] = ()
    deploy: Deploy | None = None
    screen: bool = False
    cacheable: ClassVar[bool] = True
    quality: ClassVar[bool] = False
    name: ClassVar[str] = "cost"

    @classmethod
    def check(cls, config: SearchConfig) -> None:
        """Objectives and constraints it can measure (no quality), no funnel, no weights, a deployment that
        fits the space."""
        check_metrics(config, None)
        for metric in config.needed_metrics:
            if metric in TRAINED_ONLY:
                raise ConfigError(
                    f"evaluator=cost trains nothing, so it cannot report {metric}: rank and constrain on measured "
                    "metrics (params, flops, latency_ms, decode_ms_per_token@WORKLOAD, kv_cache_bytes_per_token, "
                    "...) or use evaluator=train"
                )
        if config.fidelity.mode != "single":
            raise ConfigError(f"evaluator=cost cannot run search.fidelity={config.fidelity.mode}: it trains nothing, "
                              "so its rungs would measure the same (use single)")  # fmt: skip
        _check_no_weights(config)
        check_deployment(config)

    @classmethod
    def from_search(cls, config: SearchConfig) -> CostEvaluator:
        return _with_options(cls, config, {
            "task": config.task, "seed": config.seed, "threads": config.ray.cpus_per_trial,
            "constraints": tuple(str(c) for c in config.constraints), "deploy": config.measured_deploy,
        })  # fmt: skip

    def __call__(self, arch: Architecture, study: str, trial: int) -> TrialResult:
        import torch

        from archbench.evaluators.cost import measure_cost

        torch.set_num_threads(max(1, self.threads))
        device = "cuda" if torch.cuda.is_available() else "cpu"
        result = measure_cost(
            arch, self.get_task(), budget=self.budget, seed=self.seed, device=device, study=study, trial=trial,
            constraints=self.constraints, deploy=self.deploy, screen=self.screen, measure=self.measure,
        )  # fmt: skip
        return flag_shared_gpu(result) if device == "cuda" and self.measure else result

    def at_budget(self, budget: str, measure: bool, validate_quant: bool = True, screen: bool = False) -> CostEvaluator:
        return dataclasses.replace(self, budget=budget, measure=self.measure and measure, screen=screen)

    def continued(self, state_dir: str, save_state: bool, resume_budget: str | None) -> CostEvaluator:
        raise _keeps_no_state(self)

    def keeping_weights(self, weights_dir: str) -> CostEvaluator:
        raise _keeps_no_weights(self.name)

    def run_settings(self) -> RunSettings:
        """As :func:`~archbench.evaluators.cost.measure_cost` records them (no recipe)."""
        from archbench.evaluators.cost import cost_settings

        return cost_settings(self.deploy, self.constraints, self.screen)


class _TrainsNothing:
    """What the evaluators that train no model share (``lookup`` answers from a table, ``sleep`` sleeps):
    no training state, no weights, the study's space as given, no run settings and no data; nothing they
    return is measured here, and nothing is cached."""

    name: ClassVar[str]
    measure: ClassVar[bool] = False
    cacheable: ClassVar[bool] = False
    quality: ClassVar[bool] = True  # lookup's table rows carry it, sleep makes up a val_loss

    @classmethod
    def check(cls, config: SearchConfig) -> None:
        _check_no_weights(config)  # any metric their rows carry may be an objective

    def continued(self, state_dir: str, save_state: bool, resume_budget: str | None) -> Any:
        raise _keeps_no_state(self)

    def keeping_weights(self, weights_dir: str) -> Any:
        raise _keeps_no_weights(self.name)

    def space_for(self, config: SearchConfig, probe: Probe) -> SearchSpace:
        return config.space

    def run_settings(self) -> RunSettings:
        return RunSettings()

    def data_digest(self) -> str | None:
        return None

    def ready(self, progress: bool) -> None:
        return None


@TRIAL_EVALUATORS.register("lookup")
@dataclass(frozen=True)
class LookupEvaluator(_TrainsNothing):
    """Answer from the ok rows of a leaderboard (``table``) for ``task``/``budget``; an architecture the
    table lacks is ``unsupported`` (the benchmark's space should be the table's).

    The rows must be of one data (``data_digest``; null, rows from before it was recorded, is data of its
    own): a table holding several is refused in one line unless ``data`` picks one by a digest prefix
    (``unknown`` for the null ones). The answers carry that digest, as the rows they come from."""

    table: str = "runs/leaderboard"
    task: str = "charlm"
    budget: str = str(DEFAULT_BUDGET)
    seed: int = 0
    hardware: str | None = None  # glob on device_name; None: every device in the table
    data: str | None = None  # a data_digest prefix (or "unknown"); None: the table must hold one data
    rows: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False, repr=False)
    name: ClassVar[str] = "lookup"  # it answers from measurements taken before

    @classmethod
    def task_of(cls, config: SearchConfig) -> str:
        return config.task

    @classmethod
    def from_search(cls, config: SearchConfig) -> LookupEvaluator:
        """The table of ``evaluator_options.table`` (default: the study's own leaderboard)."""
        opts = dict(config.evaluator_options)
        allowed = ["data", "hardware", "table"]
        unknown = set(opts) - set(allowed)
        if unknown:
            raise ConfigError(f"evaluator lookup: unknown options {sorted(unknown)}; allowed: {allowed}")
        table = opts.get("table", config.leaderboard)
        return cls.load(
            table, config.task, config.budget, seed=config.seed, hardware=opts.get("hardware"), data=opts.get("data")
        )

    @classmethod
    def load(
        cls, table: str, task: str, budget: str, seed: int = 0, hardware: str | None = None, data: str | None = None
    ) -> LookupEvaluator:
        from archbench.leaderboard import Leaderboard

        df = Leaderboard(table).query(task=task, hardware=hardware, status="ok", data_digest=data).collect()
        df = df.filter(df["budget"] == budget) if "budget" in df.columns else df
        digests = df["data_digest"].unique().to_list() if df.height else []
        if len(digests) > 1:
            shown = ", ".join(sorted(d or "unknown" for d in digests))
            raise ConfigError(
                f"evaluator lookup: {table} holds rows of task {task} at {budget} on {len(digests)} data ({shown}): "
                "pick one with evaluator_options.data=DIGEST_PREFIX (unknown: rows without a digest)"
            )
        rows = {r["arch_id"]: r for r in df.sort("created_at").to_dicts()}  # latest row per arch wins
        return cls(table=table, task=task, budget=budget, seed=seed, hardware=hardware, data=data, rows=rows)

    def data_digest(self) -> str | None:
        """The digest of the rows it answers from (one, or none: see the class docstring)."""
        return next((r.get("data_digest") for r in self.rows.values()), None)

    def __call__(self, arch: Architecture, study: str, trial: int) -> TrialResult:
        row = self.rows.get(arch.arch_id)
        if row is None:
            return failed_result(
                arch, self.task, self.budget, study, trial, self.seed, "unsupported", "not in the lookup table"
            )
        metrics = {k: row.get(k) for k in METRICS}
        metrics.update({k: v for k, v in row.items() if split_workload(k)[1] is not None and of_column(k)})
        reasons = json.loads(row.get("null_reasons") or "{}")
        reasons = {k: reasons.get(k, "null in the lookup table") for k, v in metrics.items() if v is None}
        hardware = {k: row[k] for k in ("device_name", "device_kind") if k in row}
        return TrialResult(
            arch=arch, task=self.task, status="ok", study=study, trial=trial, budget=self.budget, seed=self.seed,
            metrics=metrics, null_reasons=reasons, hardware=hardware, cached=True, reason="lookup",
            data={"data_digest": row.get("data_digest")},
        )  # fmt: skip

    def at_budget(
        self, budget: str, measure: bool, validate_quant: bool = True, screen: bool = False
    ) -> LookupEvaluator:
        """The table's rows of ``budget`` (every row carries its own measurement)."""
        return LookupEvaluator.load(
            self.table, self.task, budget, seed=self.seed, hardware=self.hardware, data=self.data
        )

    def probe(self) -> Probe:
        return Probe({"device_name": "lookup:" + str(Path(self.table)), "device_kind": "lookup"})


@TRIAL_EVALUATORS.register("sleep")
@dataclass(frozen=True)
class SleepEvaluator(_TrainsNothing):
    """Sleep ``seconds``, then report the parameter count (from the shape, no torch) and depth.

    In a funnel (``rung_budget`` set, e.g. ``steps=600``) the loss falls with the budget's amount,
    ``1 / (1 + depth * width) + 1 / amount``, so rungs differ while the ranking of shapes stays.
    """

    seconds: float = 0.5
    seed: int = 0
    rung_budget: str | None = None  # set by at_budget: the rung's budget string
    task: ClassVar[str] = "sleep"  # not a field: sleep rows must never pass for a real task's
    name: ClassVar[str] = "sleep"

    @classmethod
    def task_of(cls, config: SearchConfig) -> str:
        return cls.task

    @classmethod
    def from_search(cls, config: SearchConfig) -> SleepEvaluator:
        return _with_options(cls, config, {"seed": config.seed})

    @property
    def budget(self) -> str:
        return self.rung_budget or "none"

    def at_budget(
        self, budget: str, measure: bool, validate_quant: bool = True, screen: bool = False
    ) -> SleepEvaluator:
        return dataclasses.replace(self, rung_budget=budget)

    def __call__(self, arch: Architecture, study: str, trial: int) -> TrialResult:
        started = utc_now()
        time.sleep(self.seconds)
        w, layers = arch.width, arch.unique_layers
        params = layers * (4 * w * w + (3 if arch.ffn_act == "swiglu" else 2) * w * arch.ffn_hidden)
        loss = 1.0 / (1 + arch.depth * w)
        if self.rung_budget:
            loss += 1.0 / float(self.rung_budget.partition("=")[2])
        metrics = {"params": params, "val_loss": loss, "latency_ms": float(arch.depth)}
        return TrialResult(
            arch=arch, task=self.task, status="ok", study=study, trial=trial, budget=self.budget, seed=self.seed,
            metrics=metrics, hardware={"device_name": "sleep", "device_kind": "sleep"}, started_at=started,
        )  # fmt: skip

    def probe(self) -> Probe:
        return Probe({"device_name": "sleep", "device_kind": "sleep"})
