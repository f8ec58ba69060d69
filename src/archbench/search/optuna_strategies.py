"""Optuna's samplers behind the ask/tell contract, with the study kept in a journal file.

The journal (``optuna.journal`` in the study directory) is the resume state: every ask and tell is
appended to it by Optuna itself, so a killed driver loses nothing that was told; trials left RUNNING
are the ones in flight at the crash. Constraint violations reach the samplers as Optuna 5's trial
constraints (``Trial.set_constraint``: the ``constraints:violation`` system attribute, <= 0 feasible),
set on every trial before its tell, so NSGA-II/III, TPE and GP learn to avoid the region.

:class:`OptunaEncoding` turns a search space into Optuna parameters. It lives here, not in the space, as
pymoo keeps the problem apart from the algorithm: the space knows only its integer choice vectors.
"""

from __future__ import annotations

import json
import logging
import numbers
import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.storages.journal._file import BaseJournalFileLock, get_lock_file
from optuna.trial import TrialState

from archbench.errors import ConfigError
from archbench.search.strategy import STRATEGIES, Feedback, Strategy, Suggestion

_CONSTRAINT = "constraints:violation"  # what optuna.trial.Trial.set_constraint("violation", v) writes
_WARM = "archbench_warm_start"  # a finished trial taught from an earlier study, not run in this one
_RUNG = "archbench_rung"  # a told trial's later result at a higher rung of a funnel: a record, not a trial
N_STARTUP_TRIALS = 8  # random trials before TPE / GP model the results, when options give no n_startup_trials


def _is_ordinal(choices: Sequence[Any]) -> bool:
    nums = [c for c in choices if isinstance(c, numbers.Real) and not isinstance(c, bool)]
    return len(nums) == len(choices) and list(choices) == sorted(choices)


@dataclass(frozen=True)
class OptunaEncoding:
    """A search space as Optuna parameters, one per free field: ordered numbers as an integer index (so
    TPE/GP see their order), everything else categorical over the choices themselves.

    Built on the space's integer encoding (``free_fields``, ``bounds``, ``decode``, ``encode``); a space
    without ``choices`` (e.g. a benchmark's grid) is all integer indices.
    """

    space: Any

    def _ordinal(self, field: str) -> bool:
        choices = getattr(self.space, "choices", None)
        return choices is None or _is_ordinal(choices[field])

    def distributions(self) -> dict[str, BaseDistribution]:
        """``{param: distribution}`` for the free fields."""
        _, upper = self.space.bounds()
        out: dict[str, BaseDistribution] = {}
        for k, hi in zip(self.space.free_fields, upper.tolist(), strict=True):
            out[k] = (
                IntDistribution(0, int(hi))
                if self._ordinal(k)
                else CategoricalDistribution(list(self.space.choices[k]))
            )
        return out

    def to_arch(self, params: Mapping[str, Any]) -> Any:
        """The (repaired) architecture for an Optuna trial's params."""
        x = []
        for k in self.space.free_fields:
            v = params[k]
            x.append(int(v) if self._ordinal(k) else list(self.space.choices[k]).index(v))
        return self.space.decode(x)

    def to_params(self, arch: Any) -> dict[str, Any]:
        """Params that :meth:`to_arch` maps back to ``arch`` (warm starts, enqueued trials)."""
        x = self.space.encode(arch)
        out = {}
        for k, i in zip(self.space.free_fields, x.tolist(), strict=True):
            out[k] = i if self._ordinal(k) else self.space.choices[k][i]
        return out


class _ThreadLock(BaseJournalFileLock):
    """In-process lock: the driver is the study's only writer (``study.py`` holds a per-study lock),
    so Optuna's lock files (a create and an unlink per log line) buy nothing here."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        return self._lock.acquire()

    def release(self) -> None:
        self._lock.release()


class DriverJournal(JournalFileBackend):
    """Optuna's journal file, written by one process, fsynced once per ask and once per tell.

    Optuna fsyncs every log line (one per suggested parameter: 15 for ``lm_small``), which costs tens
    of milliseconds per trial on a slow disk. Lines are still written at once (so they survive a
    SIGKILL of the driver: they are in the kernel); :meth:`sync` makes an ask durable against a machine
    crash before its trial runs. The file format is Optuna's own.
    """

    def __init__(self, file_path: str) -> None:
        super().__init__(file_path, lock_obj=_ThreadLock())
        self._dirty = False

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        with get_lock_file(self._lock):
            text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
            with open(self._file_path, "ab") as f:
                f.write(text.encode("utf-8"))
            self._dirty = True

    def sync(self) -> None:
        if self._dirty:
            fd = os.open(self._file_path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            self._dirty = False


class OptunaStrategy(Strategy):
    """Shared plumbing; subclasses say which sampler to build."""

    def make_sampler(self, seed: int) -> BaseSampler:
        raise NotImplementedError

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        path = self.state_dir / "optuna.journal"
        resumed = path.exists()
        self._journal = DriverJournal(str(path))
        self._storage = JournalStorage(self._journal)
        directions = ["maximize" if o.maximise else "minimize" for o in self.objectives]
        seed = self.seed
        if resumed:  # a fresh sampler RNG must not replay the proposals of the first run
            existing = optuna.load_study(study_name=self.study, storage=self._storage)
            seed = self.seed + len(existing.trials)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = self.make_sampler(seed)
        self._study = optuna.create_study(
            storage=self._storage,
            study_name=self.study,
            directions=directions,
            sampler=sampler,
            load_if_exists=True,
        )
        self._encoding = OptunaEncoding(self.space)
        self._dists = self._encoding.distributions()

    @property
    def n_startup_trials(self) -> int:
        return int(self.options.get("n_startup_trials", N_STARTUP_TRIALS))

    @property
    def optuna_study(self) -> optuna.Study:
        return self._study

    def ask(self) -> Suggestion | None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            trial = self._study.ask(self._dists)
        arch = self._encoding.to_arch(trial.params)
        trial.set_user_attr("arch_id", getattr(arch, "arch_id", ""))
        self._journal.sync()
        return Suggestion(trial.number, arch)

    def tell(self, feedback: Feedback) -> None:
        number = feedback.suggestion.number
        trial_id = self._storage.get_trial_id_from_study_id_trial_number(self._study._study_id, number)
        if self._storage.get_trial(trial_id).state.is_finished():
            return
        self._storage.set_trial_system_attr(trial_id, _CONSTRAINT, float(feedback.violation))
        self._storage.set_trial_user_attr(trial_id, "archbench_status", feedback.status)
        if feedback.values is not None:
            self._study.tell(number, list(feedback.values), skip_if_finished=True)
        else:
            self._study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
        # No fsync here: the driver made the trial's leaderboard row durable before telling, and a
        # resumed driver tells pending trials from their rows, so a lost tell is recovered, not lost.

    def pending(self) -> list[Suggestion]:
        running = self._study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return [Suggestion(t.number, self._encoding.to_arch(t.params)) for t in running]

    def told(self) -> int:
        finished = self._study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
        return sum(not t.user_attrs.get(_WARM) and _RUNG not in t.user_attrs for t in finished)

    def enqueue(self, arch: Any) -> None:
        self._study.enqueue_trial(self._encoding.to_params(arch), skip_if_exists=True)
        self._journal.sync()

    def warm(self, arch: Any, values: tuple[float, ...], violation: float = 0.0) -> None:
        self._record(arch, values, violation, _WARM)

    def learn(self, arch: Any, values: tuple[float, ...]) -> None:
        self._record(arch, values, 0.0, _RUNG)

    def _record(self, arch: Any, values: tuple[float, ...], violation: float, kind: str) -> None:
        """A finished trial that was not run by this study (marked ``kind``): Optuna learns from it."""
        trial = optuna.trial.create_trial(
            params=self._encoding.to_params(arch),
            distributions=self._dists,
            values=list(values),
            user_attrs={kind: True, "arch_id": arch.arch_id},
            system_attrs={_CONSTRAINT: float(violation)},
        )
        self._study.add_trial(trial)
        self._journal.sync()


@STRATEGIES.register("optuna_nsga2")
class OptunaNSGA2(OptunaStrategy):
    """Optuna's NSGA-II (``population_size``, default :data:`~archbench.search.strategy.POPULATION_SIZE`)."""

    def make_sampler(self, seed: int) -> BaseSampler:
        return optuna.samplers.NSGAIISampler(population_size=self.population_size, seed=seed)


@STRATEGIES.register("optuna_nsga3")
class OptunaNSGA3(OptunaStrategy):
    """Optuna's NSGA-III (reference-point based; better than NSGA-II beyond three objectives)."""

    def make_sampler(self, seed: int) -> BaseSampler:
        return optuna.samplers.NSGAIIISampler(population_size=self.population_size, seed=seed)


@STRATEGIES.register("optuna_tpe")
class OptunaTPE(OptunaStrategy):
    """Optuna's multi-objective TPE (MOTPE), multivariate, ``n_startup_trials`` random first; the
    constant liar keeps trials asked while others run from piling onto the same point."""

    def make_sampler(self, seed: int) -> BaseSampler:
        return optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=self.n_startup_trials,
            multivariate=True,
            constant_liar=True,
        )


class FreshGPSampler(optuna.samplers.GPSampler):
    """Optuna's GPSampler that never proposes an architecture already running or already evaluated, and
    hands over to TPE once ``max_fit_trials`` trials are complete.

    With trials in flight the GP fantasises their outcomes (q-batch log EHVI, Optuna >= 4.5), but it
    optimises in a continuous relaxation: on a discrete space nearby optima round to the same choices,
    and in ``benchmarks/search_efficiency.py`` Optuna's own GPSampler spent 8.5 of 48 evaluations (4 in
    flight) on architectures already running. A proposal whose architecture (``arch_id(params)``, after
    the space's repairs) is taken is replaced by a random untaken one (exploration, as the start-up
    trials are); the running trial's recorded proposal (what the fantasies read) is rewritten to match.

    A GP refits on every complete trial at every ask (cubic in their number): ``benchmarks/ask_time.py``
    measured seconds per ask at 300 told trials and minutes at 1,000 on 2 cores, more than a trial
    costs. Past ``max_fit_trials`` the asks go to multivariate TPE with the constant liar (cheap at
    thousands), said once in the log.
    """

    def __init__(self, *, arch_id: Any, fresh: Any, max_fit_trials: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._arch_id, self._fresh, self.max_fit_trials = arch_id, fresh, max_fit_trials
        seed = kwargs.get("seed")
        self._tpe = optuna.samplers.TPESampler(seed=seed, n_startup_trials=0, multivariate=True, constant_liar=True)
        self.replaced = 0  # proposals replaced so far
        self._said = False

    def handed_over(self, study: optuna.Study) -> bool:
        """Whether the asks go to TPE now (more than ``max_fit_trials`` trials complete)."""
        complete = len(study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,), use_cache=True))
        if complete <= self.max_fit_trials:
            return False
        if not self._said:
            self._said = True
            logging.getLogger(__name__).warning(
                "optuna_gp: %d trials complete (> max_fit_trials=%d): asks go to TPE from here, as a GP's ask "
                "grows with the cube of the trials (benchmarks/ask_time.py)",
                complete,
                self.max_fit_trials,
            )
        return True

    def infer_relative_search_space(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if self.handed_over(study):
            return self._tpe.infer_relative_search_space(study, trial)
        return super().infer_relative_search_space(study, trial)

    def sample_independent(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial, name: str, distribution: BaseDistribution
    ) -> Any:
        if self.handed_over(study):
            return self._tpe.sample_independent(study, trial, name, distribution)
        return super().sample_independent(study, trial, name, distribution)

    def sample_relative(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if self.handed_over(study):
            params = self._tpe.sample_relative(study, trial, search_space)
        else:
            params = super().sample_relative(study, trial, search_space)
        if not params or set(params) != set(search_space):
            return params
        others = study._get_trials(deepcopy=False, use_cache=False)
        taken = {t.user_attrs.get("arch_id") for t in others if t.number != trial.number}
        if self._arch_id(params) not in taken:
            return params
        replacement = self._fresh(taken, int(self._rng.rng.randint(1 << 30)))
        if replacement is None:  # every architecture of the space is taken: let it repeat one
            return params
        self.replaced += 1
        attrs = study._storage.get_trial(trial._trial_id).system_attrs
        for key in [k for k in attrs if k.startswith(_RELATIVE_PARAMS)]:  # chunks of the discarded proposal
            study._storage.set_trial_system_attr(trial._trial_id, key, "")
        prefix = _RELATIVE_PARAMS[1] if self.handed_over(study) else _RELATIVE_PARAMS[0]
        study._storage.set_trial_system_attr(trial._trial_id, f"{prefix}:0", json.dumps(replacement))
        return replacement


# Where GPSampler and TPESampler record a running trial's proposal (optuna.samplers._gp, _tpe)
_RELATIVE_PARAMS = ("gp:relative_params", "tpe:relative_params")
MAX_FIT_TRIALS = 300  # optuna_gp's default max_fit_trials


@STRATEGIES.register("optuna_gp")
class OptunaGP(OptunaStrategy):
    """Optuna's Gaussian-process sampler (log expected hypervolume improvement when multi-objective; with
    trials in flight, the q-batch form over their fantasised outcomes), which proposes no architecture
    already running or evaluated and hands over to TPE past ``max_fit_trials`` (:class:`FreshGPSampler`)."""

    def make_sampler(self, seed: int) -> BaseSampler:
        limit = self.options.get("max_fit_trials", MAX_FIT_TRIALS)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < self.n_startup_trials:
            raise ConfigError(
                f"optuna_gp: max_fit_trials={limit!r}: must be an integer >= n_startup_trials ({self.n_startup_trials})"
            )
        return FreshGPSampler(
            seed=seed,
            n_startup_trials=self.n_startup_trials,
            arch_id=self._arch_id_of,
            fresh=self._fresh,
            max_fit_trials=limit,
        )

    def _arch_id_of(self, params: Mapping[str, Any]) -> str:
        return OptunaEncoding(self.space).to_arch(params).arch_id

    def _fresh(self, taken: set[Any], seed: int) -> dict[str, Any] | None:
        """The params of a random architecture not in ``taken`` (None if 64 draws found none)."""
        for arch in self.space.sample(64, seed=seed, unique=False):
            if arch.arch_id not in taken:
                return OptunaEncoding(self.space).to_params(arch)
        return None
