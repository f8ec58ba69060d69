"""Multi-fidelity search: an asynchronous successive-halving funnel over training budgets (MO-ASHA).

``search.fidelity=halving`` with ``search.rungs=[1,3,9]`` and ``search.eta=3``: every candidate the
strategy proposes is measured and trained at rung 0 (``budget`` x ``rungs[0]``). A trial that finished
rung ``r`` is promoted to rung ``r + 1`` (``budget`` x ``rungs[r + 1]``) as soon as it is among the top
``floor(n_r / eta)`` of the ``n_r`` trials that finished rung ``r`` -- ASHA's asynchronous rule (Li et al.,
MLSys 2020), so a free worker never waits for a rung to fill -- ranked as in MO-ASHA (Schmucker et al.,
2021): non-dominated rank first, larger crowding distance within a rank next, then the trial number.
Before asking the strategy for a new candidate the driver looks for a promotion, highest rung first.
A single fidelity (``search.fidelity=single``) is the funnel of one rung: nobody is promoted, and every
candidate is told the moment its row lands, so the search loop has one path.

What the funnel decides (and why):

* Promotion follows ASHA's rule alone: whoever enters a rung's quota goes on and stays promoted, and a
  rung's ranking changes as results land (a new extreme of the front pushes others out), so more than
  1/eta go on: in ``benchmarks/multi_fidelity.py`` (480 s, 0.3.1) 30 of 54 rung-0 trials reached rung 1
  and 17 of those rung 2. Capping a rung at ``floor(n / eta)`` promotions (``search.capped``, removed)
  measured worse: it screened 82 candidates where ASHA screened 54 but sent 8 through the top rung,
  not 17, and its fronts fell short of single fidelity's in 2 seeds of 3
  (``benchmarks/results/multi_fidelity_cpu_480s_capped.json``). So did promoting the best quality within
  strata of similar cost (``search.promotion=strata``, removed;
  ``benchmarks/results/multi_fidelity_cpu_strata.json``).
* Under the default (cosine) schedule a promoted trial is trained again from scratch at the longer
  budget: that schedule spans the whole budget, so continuing a short run is not the same model as a
  long run, and a candidate that reaches rung 2 of ``[1, 3, 9]`` costs 1 + 3 + 9 = 13 base budgets of
  training. ``search.continuation=true`` (with ``train.schedule=wsd``: warm-up, stable, cool-down over
  the last 20%) keeps each rung's training state where its cool-down began
  (``<study>/train_states/``), and the promotion continues from it: rung ``r + 1`` trains
  ``rungs[r + 1] - 0.8 rungs[r]`` base budgets, so rung 2 costs 1 + 2.2 + 6.6 = 9.8, and on CPU its model
  is bit for bit the one a ``wsd`` run of rung 2's budget from scratch trains (``train_resumed_steps``
  says how many steps came from the state; a worker that cannot read the state trains from scratch, the
  same model). Every rung shares rung 0's warm-up (10% of its steps) unless ``train.warmup_steps`` is
  given. The states are deleted when consumed and when the search ends.
* Rung 0 takes a quick look at cost (``search.screen=quick``, the default: a looser latency stop rule
  capped at 1 s and a 0.5 s energy window, :data:`~archbench.evaluators.measurement.SCREEN`), enough to
  rank shapes; the top rung measures its candidates again in full, so every row of the final front carries
  a full measurement, and records the quick look next to it (``screen_latency_ms``; the screen's error
  is ``screen_latency_ms / latency_ms - 1``, as user-asks row 4 asks of any cheap proxy used for pruning).
  A quick look never rejects a candidate on a timed constraint alone (``evaluate`` measures it again in
  full first). Why: a full measurement (up to 10 s of timing, 3 s of energy) was most of a rung-0 row's
  cost (``benchmarks/multi_fidelity.py``, ``row_seconds``), paid by every candidate, while only 1 in
  ``eta ** (len(rungs) - 1)`` reaches the top. ``search.screen=full`` measures fully at rung 0 instead and
  does not measure again.
* Middle rungs do not measure: cost does not depend on the weights, so such a row carries the rung-0
  row's cost metrics and hardware fingerprint (training-only tasks are also the ones that may share a
  GPU, ``ray.train_gpu_fraction``).
* Which trials take part in rung ``r``'s ranking: every row of rung ``r`` except ``infeasible`` ones (never
  trained); failed trials count in ``n_r`` but are never promoted, nor are ok rows that break a
  constraint.
* The strategy is told each candidate once (Optuna tells a trial once), when it leaves the funnel: the
  values of the highest rung it reached. A candidate still in line for promotion (in its rung's quota
  counting one more completion, ``Funnel.in_line``, or promoted and in flight) waits; one out of line,
  failed, breaking a constraint or done with the top rung is told at once, and whatever still waits when
  the search ends is told then. ASHA's quota grows with its rung, so a candidate told while out of line
  may be promoted later: its higher rung's result is then taught as an extra record (``Strategy.learn``;
  Optuna: a finished trial with the user attribute ``archbench_rung``, not counted as a trial, though it
  takes a trial number). So a stopped candidate is told a short run's (worse) loss and a promoted one its
  long run's, as Optuna's TPE ranks a pruned trial below the trials that went further. Told rung-0 values
  only, the strategy learnt that small models are best (they learn as fast early, not late) and stopped
  proposing large ones (``benchmarks/multi_fidelity.py``). ``n_trials`` counts candidates. The front and
  hypervolume of the outcome come from the top rung.
* ``search.calibrate`` (on by default) tells the strategy a stopped candidate's quality on the top rung's
  scale, through the maps of :mod:`archbench.search.calibration` (see there why).
* Resume: leaderboard rows are the truth. A promotion is appended to ``promotions.jsonl`` (fsynced) in
  the study's directory before it is submitted; one without its row when the driver restarts is run again.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from archbench.errors import ConfigError
from archbench.leaderboard.hypervolume import to_minimisation
from archbench.leaderboard.objectives import Objective
from archbench.leaderboard.pareto import pareto_ranks
from archbench.leaderboard.schema import ARTIFACTS, IDENTITY, TIMES, arch_fields
from archbench.search.calibration import RungMap, fit_rung_map

FIDELITIES = ("single", "halving")
SCREENS = ("quick", "full")  # how rung 0 measures (see the module docstring)
NEVER_TRAINED = ("infeasible",)  # statuses that take no part in a rung's ranking


@dataclass(frozen=True)
class FidelityConfig:
    """``mode`` single (every trial at ``budget``: a funnel of one rung) or halving (the funnel over
    ``rungs``, promoting 1/``eta``)."""

    mode: str = "single"
    rungs: tuple[float, ...] = (1, 3, 9)
    eta: int = 3
    screen: str = "quick"  # quick: rung 0 measures quickly, the top rung again in full | full: rung 0 in full
    continuation: bool = False  # True: a promoted trial continues its last rung's state (train.schedule=wsd)
    # True: a candidate stopped below the top is told its quality on the top rung's scale. None: the default,
    # on for a new study; a study recorded before it was the default resumes off (see resolved()).
    calibrate: bool | None = None

    def __post_init__(self) -> None:
        if self.mode not in FIDELITIES:
            raise ConfigError(f"search.fidelity={self.mode!r}: must be one of {', '.join(FIDELITIES)}")
        rungs = self.rungs
        if isinstance(rungs, str | bytes) or not isinstance(rungs, Sequence):
            raise ConfigError(f"search.rungs={rungs!r}: give a list of budget multipliers, e.g. [1,3,9]")
        good = all(not isinstance(m, bool) and isinstance(m, int | float) and m > 0 for m in rungs)
        if not good or len(rungs) < 2 or any(b <= a for a, b in itertools.pairwise(rungs)):
            raise ConfigError(
                f"search.rungs={list(rungs)!r}: give at least two increasing positive budget multipliers, e.g. [1,3,9]"
            )
        object.__setattr__(self, "rungs", tuple(int(m) if float(m).is_integer() else float(m) for m in rungs))
        if isinstance(self.eta, bool) or not isinstance(self.eta, int) or self.eta < 2:
            raise ConfigError(f"search.eta={self.eta!r}: must be an integer of at least 2")
        if self.screen not in SCREENS:
            raise ConfigError(f"search.screen={self.screen!r}: must be one of {', '.join(SCREENS)}")
        if not isinstance(self.continuation, bool):
            raise ConfigError(f"search.continuation={self.continuation!r}: must be true or false")
        if self.calibrate is not None and not isinstance(self.calibrate, bool):
            raise ConfigError(f"search.calibrate={self.calibrate!r}: must be true or false")

    @property
    def halving(self) -> bool:
        return self.mode == "halving"

    @property
    def remeasures(self) -> bool:
        """Whether rung 0 measures quickly and the top rung measures again in full."""
        return self.halving and self.screen == "quick"

    @property
    def calibrates(self) -> bool:
        """Whether stopped candidates are told on the top rung's scale (``calibrate`` None: the default, yes)."""
        return self.calibrate is not False

    @property
    def multipliers(self) -> tuple[float, ...]:
        """Each rung's budget multiplier (one rung for a single fidelity)."""
        return self.rungs if self.halving else (1,)

    @property
    def top(self) -> int:
        """Index of the last rung (0 for a single fidelity)."""
        return len(self.multipliers) - 1

    def budgets(self, base: str) -> tuple[str, ...]:
        """Each rung's budget string: ``base`` scaled by its multiplier (``steps=30`` -> 30, 90, 270); a single
        fidelity's one rung is ``base`` as given (the sleep and lookup evaluators' ``none`` included)."""
        if not self.halving:
            return (base,)
        from archbench.evaluators.budget import Budget

        b = Budget.parse(base)
        out = tuple(str(b.scaled(m)) for m in self.rungs)
        if len(set(out)) < len(out):
            raise ConfigError(f"search.rungs={list(self.rungs)} on budget={base}: two rungs round to one budget {out}")
        return out

    def identity(self) -> dict[str, Any]:
        """What study.json records (a change is refused like any other setting)."""
        if not self.halving:
            return {"mode": "single"}
        out: dict[str, Any] = {"mode": "halving", "rungs": list(self.rungs), "eta": self.eta}
        if self.screen != "full":  # studies from before the quick screen measured fully: they resume as full
            out["screen"] = self.screen
        if self.continuation:  # recorded only when set, so studies from before (trained from scratch) resume
            out["continuation"] = True
        if self.calibrates:  # likewise (studies from before told each rung's own values: see resolved())
            out["calibrate"] = True
        return out

    def resolved(self, recorded: Mapping[str, Any] | None) -> FidelityConfig:
        """This fidelity with ``calibrate`` left to its default (None) decided: as the study's ``study.json``
        recorded it (``recorded``: its ``fidelity``; a funnel recorded without ``calibrate`` ran before it was
        the default, and resumes uncalibrated), and on for a new study."""
        if self.calibrate is not None or not recorded or recorded.get("mode") != "halving":
            return self
        return replace(self, calibrate=bool(recorded.get("calibrate", False)))


@dataclass(frozen=True)
class Completion:
    """One trial's result at one rung, as the ranking sees it."""

    trial: int
    values: tuple[float, ...] | None  # None: failed (or a missing objective)
    feasible: bool = True  # False: an ok row that breaks a constraint


def rank_order(completions: Sequence[Completion], objectives: Sequence[Objective]) -> list[int]:
    """Trial numbers of the promotable completions, best first: non-dominated rank (moocore), then larger
    crowding distance (pymoo's, within the rank; a front's extremes are infinite), then trial number.
    Failed and infeasible completions are left out: they are never promoted."""
    from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance

    good = [c for c in completions if c.values is not None and c.feasible]
    if not good:
        return []
    pts = np.array([c.values for c in good], dtype=float).reshape(len(good), len(objectives))
    ranks = pareto_ranks(pts, [o.maximise for o in objectives])
    pts_min = to_minimisation(pts, objectives)
    crowd = np.zeros(len(good))
    for r in np.unique(ranks):
        idx = np.flatnonzero(ranks == r)
        crowd[idx] = calc_crowding_distance(pts_min[idx]) if len(idx) > 2 else np.inf
    order = sorted(range(len(good)), key=lambda i: (int(ranks[i]), -float(crowd[i]), good[i].trial))
    return [good[i].trial for i in order]


def top_of_rung(completions: Sequence[Completion], objectives: Sequence[Objective], eta: int) -> list[int]:
    """ASHA's quota: the best ``floor(n / eta)`` of a rung's ``n`` completions (failed ones count in ``n``)
    by :func:`rank_order` over every objective (MO-ASHA)."""
    return rank_order(completions, objectives)[: len(completions) // eta]


class Funnel:
    """The rungs' state: who finished which rung, who was promoted; the next promotion (ASHA's rule)."""

    def __init__(self, fidelity: FidelityConfig, objectives: Sequence[Objective], study_dir: Path) -> None:
        self.fidelity = fidelity
        self.objectives = tuple(objectives)
        self.eta = fidelity.eta
        n = len(fidelity.multipliers)
        self.done: list[dict[int, Completion]] = [{} for _ in range(n)]
        self.rows: dict[int, dict[str, Any]] = {}  # rung-0 row of each candidate (its arch and measurement)
        self.launched: list[set[int]] = [set() for _ in range(n)]  # rung >= 1: promotions submitted
        # each rung's quota (now, and counting one more completion), until a new completion arrives there
        self._quotas: dict[tuple[int, int], list[int]] = {}
        self._maps: dict[int, dict[int, RungMap]] = {}  # calibrate: each rung's maps, until a completion lands
        self._log = Path(study_dir) / "promotions.jsonl"
        if self._log.exists():
            for line in self._log.read_text().splitlines():
                try:
                    rec = json.loads(line)
                    self.launched[int(rec["rung"])].add(int(rec["trial"]))
                except (ValueError, KeyError, IndexError, TypeError):
                    continue  # a line torn by a crash: its promotion is decided again

    @property
    def top(self) -> int:
        """Index of the last rung (0 for a single fidelity)."""
        return len(self.done) - 1

    def rung_of(self, row: Mapping[str, Any]) -> int:
        """A leaderboard row's rung here: its ``rung`` (null: 0, a row from before the study became a
        funnel); every row of a single fidelity is rung 0."""
        return int(row.get("rung") or 0) if self.fidelity.halving else 0

    def rung_column(self, rung: int) -> int | None:
        """What a row of ``rung`` records as its ``rung``: null at a single fidelity, which has no rungs."""
        return rung if self.fidelity.halving else None

    def record(self, rung: int, trial: int, row: Mapping[str, Any], values: tuple[float, ...] | None) -> None:
        """A finished row of ``rung`` (``values``: its objectives, None when it failed)."""
        if rung == 0:
            self.rows[trial] = dict(row)
        else:
            self.launched[rung].add(trial)
        if row.get("status") in NEVER_TRAINED:
            return
        self.done[rung][trial] = Completion(trial, values, feasible=row.get("feasible") is not False)
        self._quotas = {key: q for key, q in self._quotas.items() if key[0] != rung}
        self._maps = {} if rung == len(self.done) - 1 else {r: m for r, m in self._maps.items() if r != rung}

    def rung_maps(self, rung: int) -> dict[int, RungMap]:
        """``search.calibrate``: by objective index, the maps that put ``rung``'s quality objectives on the
        top rung's scale (cost objectives are measured, not trained: the same at every rung). Empty for the
        top rung, with calibration off, and while fewer than :data:`MIN_PAIRS` trials finished both rungs."""
        top = len(self.done) - 1
        if not self.fidelity.calibrates or rung >= top:
            return {}
        if rung not in self._maps:
            from archbench.constraints import is_pretrain

            here, there = self.done[rung], self.done[top]
            both = [t for t in here if t in there and here[t].values is not None and there[t].values is not None]
            maps = {}
            for i, o in enumerate(self.objectives):
                if is_pretrain(o.name):
                    continue
                pairs = [(here[t].values[i], there[t].values[i]) for t in both]  # type: ignore[index]
                fitted = fit_rung_map(rung, o.name, pairs)
                if fitted is not None:
                    maps[i] = fitted
            self._maps[rung] = maps
        return self._maps[rung]

    def on_top_scale(self, rung: int, values: tuple[float, ...]) -> tuple[float, ...]:
        """``values`` of a row of ``rung`` as the strategy is told them: unchanged, except with
        ``search.calibrate``, where each quality objective goes through its :meth:`rung_maps` map."""
        maps = self.rung_maps(rung)
        return tuple(maps[i](v) if i in maps else v for i, v in enumerate(values))

    def calibration(self) -> tuple[RungMap, ...]:
        """Every rung's current maps (what a stopped candidate of that rung is told through)."""
        return tuple(m for r in range(len(self.done) - 1) for m in self.rung_maps(r).values())

    def quota(self, rung: int, ahead: int = 0) -> list[int]:
        """The trials of ``rung`` that ASHA's rule promotes now, or once ``ahead`` more completions that
        rank below them have arrived (ranked once per new completion there)."""
        if (rung, ahead) not in self._quotas:
            done = [*self.done[rung].values(), *[Completion(-1, None)] * ahead]  # failed stand-ins: never ranked
            self._quotas[(rung, ahead)] = top_of_rung(done, self.objectives, self.eta)
        return self._quotas[(rung, ahead)]

    def reached(self, trial: int) -> int | None:
        """The highest rung ``trial`` has a completion at (None: none yet)."""
        return next((r for r in reversed(range(len(self.done))) if trial in self.done[r]), None)

    def in_line(self, rung: int) -> list[int]:
        """The quota ``rung`` will have after its next completion, if that one ranks below: the top
        ``ceil(n / eta)`` (``top_of_rung`` with one more completion counted), so the first completions of a
        rung, which ASHA's floor leaves without a quota yet, are in line too."""
        return self.quota(rung, ahead=self.eta - 1)

    def may_go_on(self, trial: int) -> bool:
        """Whether ``trial`` is still in the funnel: promoted past its highest finished rung (in flight), or
        in line for that rung's quota (:meth:`in_line`) and not at the top rung. A trial that may go on is
        not told to the strategy yet."""
        r = self.reached(trial)
        if r is None or r + 1 >= len(self.done):
            return False
        return trial in self.launched[r + 1] or trial in self.in_line(r)

    def next_promotion(self) -> tuple[int, int] | None:
        """``(trial, rung)`` to run next, looking from the highest rung down; None when nobody qualifies."""
        for r in reversed(range(len(self.done) - 1)):
            for trial in self.quota(r):
                if trial not in self.launched[r + 1] and trial in self.rows:
                    return trial, r + 1
        return None

    def launch(self, trial: int, rung: int) -> None:
        """Record the promotion durably, before it is submitted."""
        self.launched[rung].add(trial)
        with open(self._log, "a") as fh:
            fh.write(json.dumps({"trial": trial, "rung": rung}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def unfinished(self) -> list[tuple[int, int]]:
        """Promotions logged whose row never landed (in flight when the last driver died), lowest rung first."""
        return [
            (t, r)
            for r in range(1, len(self.launched))
            for t in sorted(self.launched[r])
            if t not in self.done[r] and t in self.rows
        ]


def promoted_row(trained: Mapping[str, Any], base: Mapping[str, Any], measured: bool = False) -> dict[str, Any]:
    """A promoted rung's row: this rung's training (identity, status, quality and training metrics, times)
    over the candidate's rung-0 row, whose measurement (cost metrics, hardware fingerprint) it keeps.

    ``measured``: this rung measured again in full (the top rung after a quick screen): the row is its own,
    with the rung-0 quick look beside it as ``screen_latency_ms`` and ``screen_stop_reason``."""
    if measured:
        return {
            **trained,
            "screen_latency_ms": base.get("latency_ms"),
            "screen_stop_reason": base.get("latency_stop_reason"),
        }
    own = {*IDENTITY, *arch_fields(), *TIMES, *ARTIFACTS, "rung"}  # ARTIFACTS: the weights this rung trained

    def from_training(key: str) -> bool:
        return key in own or key.startswith(("val_", "train_"))

    row = {k: v for k, v in base.items() if not from_training(k)}
    row.update({k: v for k, v in trained.items() if from_training(k)})
    reasons = {k: v for k, v in null_reasons_of(base).items() if not from_training(k)}
    reasons.update({k: v for k, v in null_reasons_of(trained).items() if from_training(k)})
    row["null_reasons"] = json.dumps({k: v for k, v in reasons.items() if row.get(k) is None}, sort_keys=True)
    row["feasible"] = row["violation"] = None  # judged again on the merged metrics
    return row


def null_reasons_of(row: Mapping[str, Any]) -> dict[str, str]:
    """A row's ``null_reasons`` (a JSON string in the leaderboard) as a dict; {} when missing or torn."""
    raw = row.get("null_reasons") or "{}"
    try:
        out = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except json.JSONDecodeError:
        return {}
    return out if isinstance(out, dict) else {}
