"""The search loop: ``concurrency`` trials in flight; each result is appended to the leaderboard (durable
first), then the strategy hears of it, then the next is asked for.

One path for every search: a single fidelity is the funnel of one rung (:mod:`archbench.search.fidelity`),
where nobody is promoted and every candidate is told the moment its row lands. :class:`SearchLoop` holds a
run's state (the strategy, the funnel, the cache, the jobs waiting and in flight, what the strategy was
told and what the front is made of) and its named operations: :meth:`~SearchLoop.resume` picks up what the
last driver left, :meth:`~SearchLoop.next_job` decides what runs next, :meth:`~SearchLoop.start` serves a
job from the cache or submits it, :meth:`~SearchLoop.collect` appends what finished,
:meth:`~SearchLoop.land` feeds a durable row to the funnel and the front, and :meth:`~SearchLoop.settle`
tells the strategy about each candidate that left the funnel.

The loop knows its evaluator only through :class:`~archbench.search.evaluator.TrialEvaluator`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from archbench.constraints import Constraint, judge
from archbench.errors import ConfigError
from archbench.leaderboard import Leaderboard
from archbench.leaderboard.objectives import Objective
from archbench.search.cache import Cache
from archbench.search.config import SearchConfig
from archbench.search.evaluator import TrialEvaluator
from archbench.search.fidelity import Funnel, promoted_row
from archbench.search.progress import SearchProgress, front_hypervolume, front_of
from archbench.search.report import SearchOutcome, outcome_of
from archbench.search.strategy import STRATEGIES, Feedback, Strategy, Suggestion, atomic_write_bytes
from archbench.search.trial_evaluators import failed_result, make_evaluator
from archbench.search.weights import keeps_rung, row_weights, settle_weights
from archbench.search_space.architecture import Architecture
from archbench.search_space.space import SearchSpace
from archbench.trial import TrialResult, utc_now

STATES = "train_states"  # a continued funnel's training states, in the study's directory (removed at its end)

Values = tuple[float, ...]
Rows = dict[int, dict[str, Any]]


@dataclass(frozen=True)
class Job:
    """One evaluation to run: trial ``suggestion`` at ``rung``."""

    suggestion: Suggestion
    rung: int = 0


def rung_evaluators(config: SearchConfig, evaluator: TrialEvaluator) -> list[TrialEvaluator]:
    """The evaluator of each rung. A single fidelity's one rung is the evaluator as the study built it (at
    its own budget: the sleep and lookup evaluators' ``none`` too). In a funnel rung 0 measures (quickly,
    with ``search.screen=quick``, and the top rung then measures again in full); the others only train.
    With ``search.keep_weights`` the rungs that keep weights write them (:mod:`archbench.search.weights`)."""
    out = _rungs(config, evaluator)
    where = str(config.weights_dir.resolve())  # absolute: a worker's working directory may be another
    top = len(out) - 1
    return [e.keeping_weights(where) if keeps_rung(config.keep_weights, r, top) else e for r, e in enumerate(out)]


def _rungs(config: SearchConfig, evaluator: TrialEvaluator) -> list[TrialEvaluator]:
    if not config.fidelity.halving:
        return [evaluator]
    budgets = config.fidelity.budgets(config.budget)
    top = len(budgets) - 1
    again = config.fidelity.remeasures
    ranked_on_quant = any(name.endswith("_quant") for name in config.needed_metrics)
    out = []
    for r, b in enumerate(budgets):
        measure, screen = r == 0 or (again and r == top), again and r == 0
        out.append(evaluator.at_budget(b, measure=measure, validate_quant=(r == top or ranked_on_quant), screen=screen))
    if config.fidelity.continuation:
        states = str(config.study_dir / STATES)
        out = [e.continued(states, r < top, budgets[r - 1] if r else None) for r, e in enumerate(out)]
    return out


def study_rows(lb: Leaderboard, study: str) -> list[dict[str, Any]]:
    """The study's rows of a trial, oldest first."""
    if not lb.exists():
        return []
    df = lb.query(study=study, status=None).collect()
    return [r for r in df.sort("created_at").to_dicts() if r.get("trial") is not None] if df.height else []


def rows_by_rung(lb: Leaderboard, study: str, funnel: Funnel) -> dict[int, Rows]:
    """The study's rows as ``{rung: {trial: row}}`` (the latest row of each wins; see :meth:`Funnel.rung_of`)."""
    out: dict[int, Rows] = {}
    for r in study_rows(lb, study):
        out.setdefault(funnel.rung_of(r), {})[int(r["trial"])] = r
    return out


class SearchLoop:
    """One run of a study (see the module docstring)."""

    def __init__(self, config: SearchConfig, study: str, lb: Leaderboard, executor: Any) -> None:
        self.config, self.study, self.lb, self.executor = config, study, lb, executor
        self.evaluators = rung_evaluators(config, make_evaluator(config))
        first = self.evaluators[0]
        probe = executor.run_once(first.probe)
        space = first.space_for(config, probe)
        self.strategy: Strategy = STRATEGIES.get(config.strategy)(
            space, config.objectives, config.seed, config.study_dir, study=study, **config.strategy_options
        )
        budgets = [e.budget for e in self.evaluators]
        settings = first.run_settings()
        self.full = [e.run_settings().measure_effort == "full" for e in self.evaluators]  # no quick look serves
        enabled = config.cache and first.cacheable
        self.data = data = first.data_digest()
        self.cache = Cache(lb, first.task, budgets, probe.hardware, settings, enabled, config.needed_metrics, data)
        if not (config.study_dir / "seeded.json").exists():  # a study's first run
            prior = Cache(
                lb, first.task, [first.budget], probe.hardware, settings, enabled=config.warm_start, data_digest=data
            )
            self.seed(space, prior)
        self.concurrency = config.concurrency or executor.slots()
        self.funnel = Funnel(config.fidelity, config.objectives, config.study_dir)
        self.told_values: dict[int, Values] = {}  # what the strategy learnt (feasible ok values)
        self.front_values: dict[int, Values] = {}  # what the front is made of (the top rung)
        self.latest: Rows = {}  # each candidate's row of the highest rung landed
        self.waiting: dict[int, Suggestion] = {}  # candidates still in line for promotion: not told yet
        self.in_flight: dict[Any, Job] = {}
        self.to_run: list[Job] = []
        self.progress: SearchProgress | None = None

    # ---- the run --------------------------------------------------------------------------------------
    def run(self, started: float) -> SearchOutcome:
        """Resume, then keep ``concurrency`` jobs in flight until ``n_trials`` candidates are told (or the
        timeout passes and what runs has finished)."""
        config = self.config
        self.resume()
        with SearchProgress(self.study, config.n_trials, enabled=config.progress) as self.progress:
            self.refresh()
            stalled = 0
            deadline = started + config.timeout_s if config.timeout_s else None
            while True:
                timed_out = deadline is not None and time.monotonic() >= deadline
                progressed = self.fill() if not timed_out else False
                if self.in_flight:
                    stalled = 0
                    self.collect()
                    self.refresh()
                    continue
                if timed_out or self.strategy.told() >= config.n_trials:
                    break  # (fill found no job: no candidate left to ask, no promotion)
                if self.waiting and not progressed:
                    self.settle(everyone=True)  # nothing runs and nothing can be promoted: they left the funnel
                    continue
                stalled = 0 if progressed else stalled + 1
                if stalled > 3:
                    raise ConfigError(f"strategy {config.strategy} proposes nothing while no trial is running")
            self.settle(everyone=True)  # the search is over: whoever still waited for a promotion is told now
        self.strategy.close()
        if config.fidelity.continuation:  # a later resume that promotes one of these trains it from scratch
            shutil.rmtree(config.study_dir / STATES, ignore_errors=True)
        by_rung = rows_by_rung(self.lb, self.study, self.funnel)
        calibration = self.funnel.calibration()
        outcome = outcome_of(config, self.study, self.lb, by_rung, self.front_values, started, calibration)
        front = [by_rung[self.funnel.top][r["trial"]] for r in outcome.front]
        kept = settle_weights(config.keep_weights, config.weights_dir, self.lb, self.study, front)
        return dataclasses.replace(outcome, weights=kept)

    def seed(self, space: SearchSpace, prior: Cache) -> None:
        """On a study's first run: enqueue the seed architectures and teach the strategy every row of
        ``prior`` (with ``warm_start``: the ok rows of the same task, budget, device and run settings in
        the leaderboard; none is re-run)."""
        config = self.config
        for arch in config.seed_archs:
            self.strategy.enqueue(arch)
        warmed: list[str] = []
        for row in prior.values():
            values = _row_values(row, config.objectives)
            arch = _arch_of(row)
            if values is not None and space.contains(arch):
                self.strategy.warm(arch, values, float(row.get("violation") or 0.0))
                warmed.append(row["arch_id"])
        record = {"seed_archs": [a.arch_id for a in config.seed_archs], "warm_started_from": warmed}
        atomic_write_bytes(config.study_dir / "seeded.json", json.dumps(record, indent=2).encode())

    def resume(self) -> None:
        """What the last driver left: its rows feed the funnel and the front; a candidate asked but not told
        is told from its rows, or run again if none landed; a promotion logged without its row runs again.
        Rows of other data (a study resumed with ``study.allow_changes`` after its data changed, or rows
        without a ``data_digest``) stay out of the front: it compares architectures on one corpus."""
        top = self.funnel.top
        for rung, rows in sorted(rows_by_rung(self.lb, self.study, self.funnel).items()):
            for n, r in rows.items():
                vals = _feasible_values(r, self.config.objectives)
                if vals is not None and rung == top and r.get("data_digest") == self.data:
                    self.front_values[n] = vals
                if rung <= top:
                    self.funnel.record(rung, n, r, vals)
                    self.latest[n] = r
        pending = self.strategy.pending()
        asked = {s.number for s in pending}
        for n, r in self.latest.items():
            vals = _feasible_values(r, self.config.objectives)
            if vals is not None and n not in asked:
                self.told_values[n] = vals  # told before the restart
        for s in pending:
            if s.number in self.funnel.rows:
                self.waiting[s.number] = s
            else:
                self.to_run.append(Job(s))
        self.settle()
        for trial, rung in self.funnel.unfinished():
            self.to_run.append(Job(Suggestion(trial, _arch_of(self.funnel.rows[trial])), rung))

    def fill(self) -> bool:
        """Start jobs while a slot is free; whether any was started."""
        progressed = False
        while len(self.in_flight) < self.concurrency:
            job = self.next_job()
            if job is None:
                break
            progressed = True
            self.start(job)
        return progressed

    def next_job(self) -> Job | None:
        """A promotion in flight at the crash, else a new promotion (highest rung first), else (while fewer
        than ``n_trials`` candidates are told or in play) a trial to run again or a new candidate."""
        if self.to_run and self.to_run[0].rung > 0:
            return self.to_run.pop(0)  # its quota was granted before the crash
        if (promotion := self.funnel.next_promotion()) is not None:
            trial, rung = promotion
            self.funnel.launch(trial, rung)
            return Job(Suggestion(trial, _arch_of(self.funnel.rows[trial])), rung)
        in_play = sum(j.rung == 0 for j in self.in_flight.values()) + len(self.waiting)
        if self.strategy.told() + in_play >= self.config.n_trials:
            return None
        if self.to_run:
            return self.to_run.pop(0)
        s = self.strategy.ask()
        return None if s is None else Job(s)

    def start(self, job: Job) -> None:
        """Serve ``job`` from the cache (a row lands at once) or submit it."""
        evaluator = self.evaluators[job.rung]
        hit = self.cache.get(job.suggestion.arch, evaluator.budget, full=self.full[job.rung])
        if hit is None:
            self.in_flight[self.executor.submit(evaluator, job.suggestion, self.study)] = job
            return
        now = utc_now()
        reused = {**hit, "study": self.study, "trial": job.suggestion.number, "cached": True, "started_at": now,
                  "created_at": now, "feasible": None, "violation": None}  # fmt: skip
        row = self.row_of(job, reused)
        self.lb.append([row])
        self.land(job, row)
        self.refresh()

    def collect(self) -> None:
        """Wait up to a second for jobs to finish; append their rows (durable before the strategy hears)."""
        ready = self.executor.wait(list(self.in_flight), timeout=1.0)
        finished = []
        for ref, got in zip(ready, self.executor.get_many(ready), strict=True):
            job = self.in_flight.pop(ref)
            result = got if isinstance(got, TrialResult) else self.lost(job, got)
            finished.append((job, self.row_of(job, result.to_row())))
        if finished:
            self.lb.append([row for _, row in finished])
            for job, row in finished:
                self.cache.add(row)
                self.land(job, row)

    def lost(self, job: Job, exc: BaseException) -> TrialResult:
        """The failed result of a job whose worker died ``max_retries`` times."""
        evaluator, s = self.evaluators[job.rung], job.suggestion
        retries = self.config.ray.max_retries
        reason = f"worker lost after {retries} retries: {type(exc).__name__}: {' '.join(str(exc).split())}"
        return failed_result(
            s.arch, evaluator.task, evaluator.budget, self.study, s.number, self.config.seed, "failed", reason[:400]
        )

    def row_of(self, job: Job, row: dict[str, Any]) -> dict[str, Any]:
        """The leaderboard row of a finished job: its rung, its weights file as the leaderboard records it
        (:func:`~archbench.search.weights.row_weights`), a promoted rung's training over the rung-0
        measurement (unless it measured again), and the study's constraints judged."""
        weights = row_weights(row.get("weights"), self.lb.root, cached=bool(row.get("cached")))
        row = {**row, "rung": self.funnel.rung_column(job.rung), "weights": weights}
        if job.rung > 0 and not row.get("cached"):
            again = job.rung == self.funnel.top and self.config.fidelity.remeasures
            row = promoted_row(row, self.funnel.rows[job.suggestion.number], measured=again)
        return _judged(row, self.config.constraints)

    def land(self, job: Job, row: dict[str, Any]) -> None:
        """A durable row of ``job``: feed the funnel and the front; tell the strategy about whoever left."""
        rung, n = job.rung, job.suggestion.number
        vals = _feasible_values(row, self.config.objectives)
        if rung == self.funnel.top and vals is not None:
            self.front_values[n] = vals
        self.funnel.record(rung, n, row, vals)
        self.latest[n] = row
        if rung == 0:
            self.waiting[n] = job.suggestion
        elif n not in self.waiting and vals is not None:  # told while out of line, promoted since: learn it too
            self.strategy.learn(job.suggestion.arch, self.funnel.on_top_scale(rung, vals))
        self.settle()  # a new completion changes its rung's quota: others may fall out of line

    def settle(self, everyone: bool = False) -> None:
        """Tell the strategy about each waiting candidate that left the funnel (``everyone``: all of them,
        at the end), with the row of the highest rung it reached (see :mod:`archbench.search.fidelity`)."""
        for n, s in list(self.waiting.items()):
            if everyone or not self.funnel.may_go_on(n):
                del self.waiting[n]
                self.tell(s, self.latest[n])

    def tell(self, s: Suggestion, row: dict[str, Any]) -> None:
        """Tell the strategy trial ``s``'s result: a lower rung's quality on the top's scale (with
        ``search.calibrate``); an infeasible trial penalised so that only its violation ranks it."""
        vals = _row_values(row, self.config.objectives)
        if vals is not None:
            vals = self.funnel.on_top_scale(int(row.get("rung") or 0), vals)
        status = row.get("status", "failed")
        if vals is not None and row.get("feasible") is not False:
            self.told_values[s.number] = vals
        if status == "infeasible" or (row.get("feasible") is False and vals is not None):
            # Told as a completed trial that breaks a constraint, so the strategy learns where not to go.
            vals = _penalised(row, self.config.objectives, list(self.told_values.values()))
        self.strategy.tell(Feedback(s, vals, status=status, violation=float(row.get("violation") or 0.0)))

    def refresh(self) -> None:
        """The progress bar: told, failed, running, the front's size and hypervolume."""
        if self.progress is None:
            return
        objectives = self.config.objectives
        pts = np.array(list(self.front_values.values()), dtype=float).reshape(-1, len(objectives))
        hv = front_hypervolume(pts, objectives) if len(pts) else 0.0
        front = int(front_of(pts, objectives).sum()) if len(pts) else 0
        told = self.strategy.told()
        self.progress.update(told, told - len(self.told_values), len(self.in_flight), front, hv)


def _arch_of(row: dict[str, Any]) -> Architecture:
    return Architecture.from_dict({k: row[k] for k in Architecture.field_names()})


def _judged(row: dict[str, Any], constraints: Sequence[Constraint]) -> dict[str, Any]:
    """The row with ``feasible``/``violation`` filled from the study's constraints (unless the evaluator
    already judged it)."""
    if not constraints or row.get("feasible") is not None:
        return row
    feasible, violation, _ = judge(row, constraints)
    return {**row, "feasible": feasible, "violation": violation}


def _penalised(row: dict[str, Any], objectives: Sequence[Objective], seen: Sequence[Values]) -> Values:
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


def _row_values(row: dict[str, Any], objectives: Sequence[Objective]) -> Values | None:
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


def _feasible_values(row: dict[str, Any], objectives: Sequence[Objective]) -> Values | None:
    """The objectives of an ok row that breaks no constraint (None otherwise): what fronts are made of."""
    return _row_values(row, objectives) if row.get("feasible") is not False else None
