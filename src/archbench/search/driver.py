"""The search driver: one asynchronous loop shared by every strategy.

It keeps ``concurrency`` trials in flight on Ray, and for each one that returns it appends the row to
the leaderboard (durable first), then tells the strategy, then asks for the next. Ray is the executor,
not the driver.

Resume: the strategy's state lives in ``<studies_root>/<study>/`` next to the leaderboard. After a crash
(even SIGKILL) the same command continues: trials told before the crash are kept; trials in flight
are told from their leaderboard row if it landed, and run again once otherwise.

Cache: an architecture already measured (status ok) for the same task, budget and hardware is not
trained again; its row is reused for the new trial, marked ``cached``.

Multi-fidelity (``fidelity=FidelityConfig("halving")``): the successive-halving funnel of
:mod:`archbench.search.fidelity`; each rung a trial reaches is one row with its budget and ``rung``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from archbench.constraints import Constraint, judge
from archbench.deploy import Deploy
from archbench.errors import ConfigError
from archbench.leaderboard import Leaderboard
from archbench.leaderboard.objectives import Objective
from archbench.search.executor import RayConfig, make_executor
from archbench.search.fidelity import FidelityConfig, Funnel, RungMap, null_reasons_of, promoted_row
from archbench.search.progress import SearchProgress, front_hypervolume, front_of, front_table
from archbench.search.strategy import STRATEGIES, Feedback, Strategy, Suggestion, atomic_write_bytes
from archbench.search.study import check_or_create, driver_lock, space_hash
from archbench.search.trial_evaluators import failed_result
from archbench.search_space.architecture import Architecture
from archbench.search_space.space import SearchSpace
from archbench.train_config import TrainConfig
from archbench.trial import NOT_VALIDATED, TrialResult, utc_now


@dataclass(frozen=True)
class SearchConfig:
    """Everything one search needs, as typed values (the CLI builds it from the Hydra config)."""

    space: SearchSpace
    task: str = "charlm"
    budget: str = "steps=400"  # = evaluators.DEFAULT_BUDGET (tests hold them together)
    strategy: str = "optuna_tpe"
    strategy_options: dict[str, Any] = field(default_factory=dict)
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

    def __post_init__(self) -> None:
        if self.n_trials < 1:
            raise ConfigError(f"n_trials={self.n_trials}: must be at least 1")
        if self.concurrency is not None and self.concurrency < 1:
            raise ConfigError(f"concurrency={self.concurrency}: must be at least 1 (or null for every slot)")
        if self.strategy not in STRATEGIES:
            raise ConfigError(STRATEGIES.unknown_message(self.strategy))
        if len(self.objectives) < 1:
            raise ConfigError("objectives: give at least one, e.g. [val_loss:min, latency_ms:min]")
        if self.evaluator == "train":
            check_objectives(self.objectives, None)
            check_objectives(tuple(Objective(c.metric) for c in self.constraints), None, what="constraint")
        if self.timeout_s is not None and (
            isinstance(self.timeout_s, bool) or not isinstance(self.timeout_s, int | float) or self.timeout_s <= 0
        ):
            raise ConfigError(f"timeout={self.timeout_s!r}: must be a positive number of seconds (or null)")
        if self.fidelity.halving:
            self.fidelity.budgets(self.budget)  # a budget the rungs can scale, and rungs that stay distinct
        if self.evaluator == "train":
            self.trial_train_config()  # a schedule the budget (and the funnel's continuation) allows
        if self.evaluator == "train":
            lengths = self.space.to_dict()["fields"].get("max_seq_len", Architecture().max_seq_len)
            for max_seq_len in lengths if isinstance(lengths, list) else [lengths]:
                self.measured_deploy.check_fits(int(max_seq_len))
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
        """``deploy`` plus the modes the objectives and constraints need (decode_ms_per_token: decode)."""
        return self.deploy.for_metrics(self.needed_metrics)

    @property
    def needed_metrics(self) -> tuple[str, ...]:
        """The metrics the study ranks or judges on: its objectives' and constraints'."""
        return tuple(dict.fromkeys([o.name for o in self.objectives] + [c.metric for c in self.constraints]))

    @property
    def task_label(self) -> str:
        """The task the rows are recorded under (``sleep`` for the driver benchmark's evaluator)."""
        return "sleep" if self.evaluator == "sleep" else self.task

    @property
    def study_name(self) -> str:
        funnel = "-halving" if self.fidelity.halving else ""
        return self.study or f"{self.task_label}-{self.space.name}-{self.strategy}{funnel}-s{self.seed}"

    @property
    def study_dir(self) -> Path:
        root = Path(self.studies_root) if self.studies_root else Path(self.leaderboard).parent / "studies"
        return root / self.study_name

    def identity(self) -> dict[str, Any]:
        """What defines the study (see :mod:`archbench.search.study`)."""
        fields = self.space.to_dict()["fields"]
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
        }


@dataclass(frozen=True)
class SearchOutcome:
    """What a finished search leaves: its study, counts, front rows, hypervolume and the plot path."""

    study: str
    study_dir: Path
    leaderboard: Path
    trials: int
    ok: int
    failed: int
    cached: int
    front: tuple[dict[str, Any], ...]
    hypervolume: float
    plot: Path | None
    wall_s: float
    rungs: tuple[tuple[str, int], ...] = ()  # a funnel's (budget, rows) per rung; the front is the last's
    screen_error: tuple[float, ...] = ()  # a funnel's top rows: screen_latency_ms / latency_ms - 1
    calibration: tuple[RungMap, ...] = ()  # search.calibrate: each lower rung's map onto the top rung's scale


def make_evaluator(config: SearchConfig) -> Any:
    from archbench.search.trial_evaluators import TRIAL_EVALUATORS, LookupEvaluator

    opts = dict(config.evaluator_options)
    if config.evaluator == "lookup":
        return LookupEvaluator.load(
            opts.pop("table", config.leaderboard), config.task, config.budget, seed=config.seed, **opts
        )
    cls = TRIAL_EVALUATORS.get(config.evaluator)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(opts) - fields
    if unknown:
        raise ConfigError(f"evaluator {config.evaluator}: unknown options {sorted(unknown)}; allowed: {sorted(fields)}")
    base = {k: v for k, v in {"task": config.task, "budget": config.budget, "seed": config.seed}.items() if k in fields}
    if "threads" in fields:
        base["threads"] = config.ray.cpus_per_trial
    if "constraints" in fields:
        base["constraints"] = tuple(str(c) for c in config.constraints)
    if "deploy" in fields:
        base["deploy"] = config.measured_deploy
    if "train" in fields:
        base["train"] = config.trial_train_config()
    return cls(**{**base, **opts})


# What must match besides task and budget: the device, CPU threads, archbench version, and the deployment
# (modes, shape, eager/compile) the latency was measured in.
# and the training schedule (a row from before it was recorded was trained under the default, cosine).
CACHE_KEYS = ("device_name", "torch_threads", "archbench_version", "deploy", "train_schedule")
CACHE_DEFAULTS = {"train_schedule": "cosine"}


class _Cache:
    """ok rows by (arch_id, budget) for this task and these budgets, measured on the same device (same
    ``CACHE_KEYS``: a CPU latency taken with another thread count, or by another archbench version, is not
    reused). Keyed on the budget, so the rungs of a funnel never stand in for one another. A row that
    left one of the ``needed`` metrics uncomputed (a screening rung's ``*_quant`` quality) is no hit, nor
    is a quick look at cost (``measure_effort`` screen) for an evaluator that measures in full."""

    def __init__(
        self,
        lb: Leaderboard,
        task: str,
        budgets: Sequence[str],
        hardware: dict[str, Any],
        enabled: bool,
        needed: Sequence[str] = (),
    ) -> None:
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}
        self.full: dict[tuple[str, str], dict[str, Any]] = {}  # the rows measured in full (or not screened)
        self.needed = tuple(needed)
        self.identity = {k: hardware[k] for k in CACHE_KEYS if hardware.get(k) is not None}
        self.enabled = enabled and "device_name" in self.identity
        if not self.enabled or not lb.exists():
            return
        df = lb.query(task=task, status="ok").collect()
        needed = set(self.identity) - set(CACHE_DEFAULTS)  # a missing column with a default means the default
        if not df.height or "budget" not in df.columns or not needed <= set(df.columns):
            return
        df = df.with_columns(pl.lit(None, pl.String()).alias(k) for k in CACHE_DEFAULTS if k not in df.columns)
        df = df.filter(pl.col("budget").is_in(list(budgets)))
        for key, value in self.identity.items():
            col = pl.col(key) if key not in CACHE_DEFAULTS else pl.col(key).fill_null(CACHE_DEFAULTS[key])
            df = df.filter(col == value)
        for row in df.sort("created_at").to_dicts():
            self.add(row)

    def get(self, arch: Architecture, budget: str, full: bool = True) -> dict[str, Any] | None:
        """The latest row of ``arch`` at ``budget``; with ``full``, the latest not measured by a quick look."""
        return (self.full if full else self.rows).get((arch.arch_id, budget)) if self.enabled else None

    def add(self, row: dict[str, Any]) -> None:
        if not self.enabled or row.get("status") != "ok":
            return
        skipped = null_reasons_of(row)
        if any(row.get(k) is None and skipped.get(k) == NOT_VALIDATED for k in self.needed):
            return
        if all(_or_default(row, k) == v for k, v in self.identity.items()):
            self.rows[(row["arch_id"], row["budget"])] = row
            if row.get("measure_effort") != "screen":
                self.full[(row["arch_id"], row["budget"])] = row


def _or_default(row: Mapping[str, Any], key: str) -> Any:
    value = row.get(key)
    return CACHE_DEFAULTS.get(key) if value is None else value


def _seed_once(
    config: SearchConfig,
    strategy: Strategy,
    space: SearchSpace,
    lb: Leaderboard,
    hardware: dict[str, Any],
    evaluator: Any,
) -> None:
    """On a study's first run: enqueue the seed architectures and, with ``warm_start``, teach the strategy
    every ok row of the same task, budget and hardware already in the leaderboard (nothing is re-run)."""
    marker = config.study_dir / "seeded.json"
    if marker.exists():
        return
    for arch in config.seed_archs:
        strategy.enqueue(arch)
    warmed: list[str] = []
    if config.warm_start:
        prior = _Cache(lb, evaluator.task, [evaluator.budget], hardware, enabled=True)
        for (arch_id, _), row in sorted(prior.rows.items()):
            values = _row_values(row, config.objectives)
            if values is None:
                continue
            arch = Architecture.from_dict({k: row[k] for k in Architecture.field_names()})
            if not space.contains(arch):
                continue
            strategy.warm(arch, values, float(row.get("violation") or 0.0))
            warmed.append(arch_id)
    record = {"seed_archs": [a.arch_id for a in config.seed_archs], "warm_started_from": warmed}
    atomic_write_bytes(marker, json.dumps(record, indent=2).encode())


def _reuse(row: dict[str, Any], study: str, trial: int) -> dict[str, Any]:
    now = utc_now()
    return {**row, "study": study, "trial": trial, "cached": True, "started_at": now, "created_at": now}


def _lost(config: SearchConfig, evaluator: Any, s: Suggestion, study: str, exc: BaseException) -> TrialResult:
    reason = f"worker lost after {config.ray.max_retries} retries: {type(exc).__name__}: {' '.join(str(exc).split())}"
    return failed_result(s.arch, evaluator.task, evaluator.budget, study, s.number, config.seed, "failed", reason[:400])


def run_search(config: SearchConfig) -> SearchOutcome:
    """Run (or resume) the study described by ``config``; see the module docstring."""
    started = time.monotonic()
    study = config.study_name
    lb = Leaderboard(config.leaderboard)
    with driver_lock(config.study_dir, study):
        if not (config.study_dir / "study.json").exists() and _study_rows(lb, study):
            raise ConfigError(
                f"the leaderboard already has rows of study {study!r} but its state ({config.study_dir}) "
                "is missing: pick another study=NAME rather than mix two runs under one name"
            )
        check_or_create(config.study_dir, study, config.identity(), allow_changes=config.allow_changes)
        executor = make_executor(config.ray)
        try:
            return _loop(config, study, lb, executor, started)
        finally:
            executor.shutdown()


NOT_ON_CPU = ("energy_mj", "energy_above_idle_mj", "avg_power_w")


def check_objectives(objectives: Sequence[Objective], device_kind: str | None, what: str = "objective") -> None:
    """Objectives (and constraint metrics) must be metrics a trial reports or numeric Architecture fields,
    and measurable on this device."""
    from archbench.trial import METRICS

    numeric_fields = [f for f, v in Architecture().to_dict().items() if isinstance(v, int | float)]
    known = [*METRICS, *numeric_fields]
    for o in objectives:
        if o.name not in known:
            import difflib

            close = difflib.get_close_matches(o.name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{what} {o.name!r} is not a metric{hint}; known: {', '.join(known)}")
        if device_kind == "cpu" and o.name in NOT_ON_CPU:
            raise ConfigError(
                f"{what} {o.name} cannot be measured on this CPU-only cluster (no NVML energy counter); "
                "use latency_ms, peak_mem_mb, params, flops or model_bytes, or run on GPUs"
            )


@dataclass(frozen=True)
class _Job:
    """One evaluation to run: trial ``suggestion`` at ``rung`` (None: single fidelity)."""

    suggestion: Suggestion
    rung: int | None = None


def _rung_evaluators(config: SearchConfig, evaluator: Any) -> list[Any]:
    """The evaluator of each rung (one for a single fidelity): rung 0 measures (quickly, with
    ``search.screen=quick``, and the top rung then measures again in full); the others only train."""
    if not config.fidelity.halving:
        return [evaluator]
    if not hasattr(evaluator, "at_budget"):
        raise ConfigError(f"evaluator {config.evaluator} cannot run search.fidelity=halving (it has no at_budget)")
    budgets = config.fidelity.budgets(config.budget)
    top = len(budgets) - 1
    again = config.fidelity.remeasures
    ranked_on_quant = any(name.endswith("_quant") for name in config.needed_metrics)
    out = []
    for r, b in enumerate(budgets):
        measure, screen = r == 0 or (again and r == top), again and r == 0
        out.append(evaluator.at_budget(b, measure=measure, validate_quant=(r == top or ranked_on_quant), screen=screen))
    if config.fidelity.continuation:
        if not all(hasattr(e, "state_dir") for e in out):
            raise ConfigError(f"evaluator {config.evaluator} cannot run search.continuation=true (it keeps no state)")
        states = str(config.study_dir / STATES)
        out = [
            dataclasses.replace(e, state_dir=states, save_state=r < top, resume_budget=budgets[r - 1] if r else None)
            for r, e in enumerate(out)
        ]
    return out


STATES = "train_states"  # a continued funnel's training states, in the study's directory (removed at its end)


def _loop(config: SearchConfig, study: str, lb: Leaderboard, executor: Any, started: float) -> SearchOutcome:
    evaluators = _rung_evaluators(config, make_evaluator(config))
    evaluator = evaluators[0]
    hardware = executor.run_once(evaluator.probe_hardware) if hasattr(evaluator, "probe_hardware") else {}
    if config.evaluator == "train":
        check_objectives(config.objectives, hardware.get("device_kind"))
        cons = tuple(Objective(c.metric) for c in config.constraints)
        check_objectives(cons, hardware.get("device_kind"), what="constraint")
    space = config.space
    if config.evaluator == "train":
        from archbench.search_space.quantize import supported_quants

        kind = hardware.get("device_kind", "cpu")
        space = space.for_device(executor.run_once(lambda: supported_quants(kind)))
    strategy: Strategy = STRATEGIES.get(config.strategy)(
        space, config.objectives, config.seed, config.study_dir, study=study, **config.strategy_options
    )
    use_cache = config.cache and evaluator.cacheable
    cache = _Cache(lb, evaluator.task, [e.budget for e in evaluators], hardware, use_cache, config.needed_metrics)
    _seed_once(config, strategy, space, lb, hardware, evaluator)
    concurrency = config.concurrency or executor.slots()
    funnel = Funnel(config.fidelity, config.objectives, config.study_dir) if config.fidelity.halving else None
    top = config.fidelity.top

    by_rung = _rows_by_rung(lb, study, funnel is not None)
    told_values: dict[int, tuple[float, ...]] = {}  # what the strategy learnt (feasible ok values)
    front_values: dict[int, tuple[float, ...]] = {}  # what the front is made of (the top rung)
    latest: dict[int, dict[str, Any]] = {}  # a funnel's candidates: the row of the highest rung landed
    waiting: dict[int, Suggestion] = {}  # a funnel's candidates still in line for promotion: not told yet
    for rung, rows in sorted(by_rung.items()):
        for n, r in rows.items():
            vals = _feasible_values(r, config.objectives)
            if vals is not None and rung == top:
                front_values[n] = vals
            if funnel is not None and rung <= top:
                funnel.record(rung, n, r, vals)
                latest[n] = r
    done_rows = by_rung.get(0, {})
    in_flight: dict[Any, _Job] = {}
    to_run: list[_Job] = []
    first = 0 if funnel is not None else None

    def finish(s: Suggestion, row: dict[str, Any]) -> None:
        vals = _row_values(row, config.objectives)
        if vals is not None and funnel is not None:  # search.calibrate: a lower rung's quality on the top's scale
            vals = funnel.on_top_scale(int(row.get("rung") or 0), vals)
        status = row.get("status", "failed")
        violation = float(row.get("violation") or 0.0)
        if vals is not None and row.get("feasible") is not False:
            told_values[s.number] = vals
        if status == "infeasible" or (row.get("feasible") is False and vals is not None):
            # Told as a completed trial that breaks a constraint, so the strategy learns where not to go.
            vals = _penalised(row, config.objectives, list(told_values.values()))
        strategy.tell(Feedback(s, vals, status=status, violation=violation))

    def settle(everyone: bool = False) -> None:
        """Tell the strategy about each waiting candidate that left the funnel (``everyone``: all of them,
        at the end), with the row of the highest rung it reached (see :mod:`archbench.search.fidelity`)."""
        for n, s in list(waiting.items()):
            if everyone or funnel is None or not funnel.may_go_on(n):
                del waiting[n]
                finish(s, latest[n])

    def landed(job: _Job, row: dict[str, Any]) -> None:
        """A durable row of ``job``: feed the funnel and the front, and tell the strategy (a single
        fidelity at once; a funnel's candidate once it leaves the funnel)."""
        rung, n = job.rung or 0, job.suggestion.number
        vals = _feasible_values(row, config.objectives)
        if rung == top and vals is not None:
            front_values[n] = vals
        if funnel is None:
            finish(job.suggestion, row)
            return
        funnel.record(rung, n, row, vals)
        latest[n] = row
        if rung == 0:
            waiting[n] = job.suggestion
        elif n not in waiting and vals is not None:  # told while out of line, promoted since: learn it too
            strategy.learn(job.suggestion.arch, funnel.on_top_scale(rung, vals))
        settle()  # a new completion changes its rung's quota: others may fall out of line

    # Resume: what was in flight when the last driver died.
    pending = strategy.pending()
    asked = {s.number for s in pending}
    for n, r in (latest if funnel is not None else done_rows).items():
        vals = _feasible_values(r, config.objectives)
        if vals is not None and n not in asked:
            told_values[n] = vals  # told before the restart
    for s in pending:
        if s.number in done_rows and funnel is not None:
            waiting[s.number] = s
        elif s.number in done_rows:
            finish(s, done_rows[s.number])
        else:
            to_run.append(_Job(s, first))
    if funnel is not None:
        settle()
        for trial, rung in funnel.unfinished():
            to_run.append(_Job(Suggestion(trial, _arch_of(funnel.rows[trial])), rung))

    def candidates_in_flight() -> int:
        """Candidates asked but not told: at rung 0 in flight, or waiting in the funnel."""
        return sum((j.rung or 0) == 0 for j in in_flight.values()) + len(waiting)

    def next_job() -> _Job | None:
        if to_run and (to_run[0].rung or 0) > 0:
            return to_run.pop(0)  # a promotion in flight at the crash: its quota was already granted
        if funnel is not None and (promotion := funnel.next_promotion()) is not None:
            trial, rung = promotion
            funnel.launch(trial, rung)
            return _Job(Suggestion(trial, _arch_of(funnel.rows[trial])), rung)
        if strategy.told() + candidates_in_flight() >= config.n_trials:
            return None
        if to_run:
            return to_run.pop(0)
        s = strategy.ask()
        return None if s is None else _Job(s, first)

    def row_of(job: _Job, row: dict[str, Any]) -> dict[str, Any]:
        """The leaderboard row of a finished job: its rung, the measurement of rung 0 for a promoted
        rung, and the study's constraints judged."""
        if job.rung is not None:
            row = {**row, "rung": job.rung}
            if job.rung > 0 and funnel is not None and not row.get("cached"):
                again = job.rung == top and config.fidelity.remeasures
                row = promoted_row(row, funnel.rows[job.suggestion.number], measured=again)
        return _judged(row, config.constraints)

    with SearchProgress(study, config.n_trials, enabled=config.progress) as progress:

        def refresh() -> None:
            pts = np.array(list(front_values.values()), dtype=float).reshape(-1, len(config.objectives))
            hv = front_hypervolume(pts, config.objectives) if len(pts) else 0.0
            front = int(front_of(pts, config.objectives).sum()) if len(pts) else 0
            told = strategy.told()
            progress.update(told, told - len(told_values), len(in_flight), front, hv)

        refresh()
        stalled = 0
        deadline = started + config.timeout_s if config.timeout_s else None
        while True:
            timed_out = deadline is not None and time.monotonic() >= deadline
            progressed = False
            while not timed_out and len(in_flight) < concurrency:
                job = next_job()
                if job is None:
                    break
                progressed = True
                rung_eval = evaluators[job.rung or 0]
                full = bool(getattr(rung_eval, "measure", False)) and not getattr(rung_eval, "screen", False)
                hit = cache.get(job.suggestion.arch, rung_eval.budget, full=full)
                if hit is not None:
                    fresh = {**_reuse(hit, study, job.suggestion.number), "feasible": None, "violation": None}
                    row = row_of(job, fresh)
                    lb.append([row])
                    landed(job, row)
                    refresh()
                    continue
                in_flight[executor.submit(rung_eval, job.suggestion, study)] = job
            if not in_flight:
                if timed_out or strategy.told() >= config.n_trials:
                    break  # (the fill loop above found no job: no candidate left to ask, no promotion)
                if waiting and not progressed:
                    settle(everyone=True)  # nothing runs and nothing can be promoted: they left the funnel
                    continue
                stalled = 0 if progressed else stalled + 1
                if stalled > 3:
                    raise ConfigError(f"strategy {config.strategy} proposes nothing while no trial is running")
                continue
            stalled = 0
            finished = []
            ready = executor.wait(list(in_flight), timeout=1.0)
            for ref, got in zip(ready, executor.get_many(ready), strict=True):
                job = in_flight.pop(ref)
                rung_eval = evaluators[job.rung or 0]
                result = got if isinstance(got, TrialResult) else _lost(config, rung_eval, job.suggestion, study, got)
                finished.append((job, row_of(job, result.to_row())))
            if finished:
                lb.append([row for _, row in finished])  # durable before the strategy hears of it
                for job, row in finished:
                    cache.add(row)
                    landed(job, row)
            refresh()
        settle(everyone=True)  # the search is over: whoever still waited for a promotion is told now

    strategy.close()
    if config.fidelity.continuation:  # a later resume that promotes one of these trains it from scratch
        shutil.rmtree(config.study_dir / STATES, ignore_errors=True)
    calibration = funnel.calibration() if funnel is not None else ()
    return _outcome(config, study, lb, front_values, started, calibration)


def _arch_of(row: dict[str, Any]) -> Architecture:
    return Architecture.from_dict({k: row[k] for k in Architecture.field_names()})


def _study_rows(lb: Leaderboard, study: str) -> dict[int, dict[str, Any]]:
    """The study's rows by trial (the last row of each trial wins: in a funnel, use :func:`_rows_by_rung`)."""
    if not lb.exists():
        return {}
    df = lb.query(study=study, status=None).collect()
    if not df.height:
        return {}
    return {int(r["trial"]): r for r in df.sort("created_at").to_dicts() if r.get("trial") is not None}


def _rows_by_rung(lb: Leaderboard, study: str, funnel: bool) -> dict[int, dict[int, dict[str, Any]]]:
    """The study's rows as ``{rung: {trial: row}}``. A single-fidelity study's rows (rung null) are rung 0;
    in a funnel a null rung (a row from before the study became one) counts as rung 0 too."""
    if not lb.exists():
        return {}
    df = lb.query(study=study, status=None).collect()
    out: dict[int, dict[int, dict[str, Any]]] = {}
    for r in df.sort("created_at").to_dicts() if df.height else []:
        if r.get("trial") is None:
            continue
        rung = int(r.get("rung") or 0) if funnel else 0
        out.setdefault(rung, {})[int(r["trial"])] = r
    return out


def _judged(row: dict[str, Any], constraints: Sequence[Constraint]) -> dict[str, Any]:
    """The row with ``feasible``/``violation`` filled from the study's constraints (unless the evaluator
    already judged it)."""
    if not constraints or row.get("feasible") is not None:
        return row
    feasible, violation, _ = judge(row, constraints)
    return {**row, "feasible": feasible, "violation": violation}


def _penalised(
    row: dict[str, Any], objectives: Sequence[Objective], seen: Sequence[tuple[float, ...]]
) -> tuple[float, ...]:
    """Objective values for an infeasible trial: what was measured, and for the rest (e.g. a loss that
    was never trained) a value worse than any feasible one seen, so only the violation ranks it."""
    out = []
    for i, o in enumerate(objectives):
        v = row.get(o.name)
        if v is not None and not isinstance(v, bool) and isinstance(v, int | float) and np.isfinite(v):
            out.append(float(v))
            continue
        column = [p[i] for p in seen]
        if column:
            worst, span = (min(column), -1.0) if o.maximise else (max(column), 1.0)
            out.append(worst + span * (abs(worst) * 0.1 + 1.0))
        else:
            out.append(-1e9 if o.maximise else 1e9)
    return tuple(out)


def _row_values(row: dict[str, Any], objectives: Sequence[Objective]) -> tuple[float, ...] | None:
    """The objectives of an ok leaderboard row, or None when it failed or one is missing."""
    if row.get("status") != "ok":
        return None
    vals = []
    for o in objectives:
        v = row.get(o.name)
        if v is None or isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
            return None
        vals.append(float(v))
    return tuple(vals)


def _feasible_values(row: dict[str, Any], objectives: Sequence[Objective]) -> tuple[float, ...] | None:
    """The objectives of an ok row that breaks no constraint (None otherwise): what fronts are made of."""
    return _row_values(row, objectives) if row.get("feasible") is not False else None


def _outcome(
    config: SearchConfig,
    study: str,
    lb: Leaderboard,
    values: dict[int, tuple[float, ...]],
    started: float,
    calibration: tuple[RungMap, ...] = (),
) -> SearchOutcome:
    """Counts over the study's candidates (rung 0); the front and hypervolume of ``values`` (the top rung)."""
    funnel = config.fidelity.halving
    by_rung = _rows_by_rung(lb, study, funnel)
    rows, top_rows = by_rung.get(0, {}), by_rung.get(config.fidelity.top, {})
    numbers = sorted(values)
    pts = np.array([values[n] for n in numbers], dtype=float).reshape(-1, len(config.objectives))
    mask = front_of(pts, config.objectives) if len(pts) else np.zeros(0, dtype=bool)
    front = []
    for n, on in zip(numbers, mask, strict=True):
        if on and n in top_rows:
            row = top_rows[n]
            front.append({"trial": n, "arch_id": row["arch_id"], "describe": _arch_of(row).describe(),
                          **{o.name: row[o.name] for o in config.objectives}})  # fmt: skip
    key = config.objectives[0].name
    front.sort(key=lambda r: r[key], reverse=config.objectives[0].maximise)
    plot = None
    if config.plot and len(config.objectives) >= 2 and values:
        where = f"rung>={config.fidelity.top}" if funnel else None
        try:
            plot = lb.plot(config.study_dir / "front.png", list(config.objectives), study=study, where=where)
        except Exception:  # a plot is a convenience; the search's results are already safe
            plot = None
    ok = sum(r["status"] == "ok" for r in rows.values())
    budgets = config.fidelity.budgets(config.budget) if funnel else ()
    return SearchOutcome(
        study=study,
        study_dir=config.study_dir,
        leaderboard=Path(config.leaderboard),
        trials=len(rows),
        ok=ok,
        failed=len(rows) - ok,
        cached=sum(bool(r.get("cached")) for r in rows.values()),
        front=tuple(front),
        hypervolume=front_hypervolume(pts, config.objectives) if len(pts) else 0.0,
        plot=plot,
        wall_s=time.monotonic() - started,
        rungs=tuple((b, len(by_rung.get(r, {}))) for r, b in enumerate(budgets)),
        screen_error=tuple(
            r["screen_latency_ms"] / r["latency_ms"] - 1
            for r in top_rows.values()
            if r["status"] == "ok" and r.get("screen_latency_ms") and r.get("latency_ms")
        ),
        calibration=calibration,
    )


def print_outcome(outcome: SearchOutcome, objectives: Sequence[Objective]) -> None:
    """The end-of-search report: the front as a table, counts, and where the plot and rows are."""
    from rich.console import Console

    console = Console()
    title = f"front of study {outcome.study}" + (f" (top rung, {outcome.rungs[-1][0]})" if outcome.rungs else "")
    console.print(front_table(outcome.front, objectives, title))
    console.print(
        f"{outcome.trials} trials ({outcome.ok} ok, {outcome.failed} failed, {outcome.cached} cached) "
        f"in {outcome.wall_s:.0f} s; hypervolume {outcome.hypervolume:.4g}"
    )
    if outcome.rungs:
        console.print("funnel: " + ", ".join(f"rung {r} ({b}) {n} rows" for r, (b, n) in enumerate(outcome.rungs)))
    if outcome.screen_error:
        errors = np.abs(outcome.screen_error)
        console.print(
            f"rung 0's quick latency vs the top rung's full measurement: median |error| {np.median(errors):.1%}, "
            f"largest {errors.max():.1%} over {len(errors)} rows (screen_latency_ms)"
        )
    for m in outcome.calibration:
        fit = "" if m.r2 is None else f", R^2 {m.r2:.2f}"
        console.print(
            f"calibration: {m.objective} at the top rung ~ {m.intercept:.3g} + {m.slope:.3g} x rung {m.rung}'s "
            f"(fitted on {m.n} trials{fit})"
        )
    console.print(f"leaderboard: {outcome.leaderboard}   study state: {outcome.study_dir}")
    if outcome.plot:
        console.print(f"front plot: {outcome.plot}")
