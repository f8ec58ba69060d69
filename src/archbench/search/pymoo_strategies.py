"""pymoo's genetic algorithms (NSGA-II, NSGA-III, AGE-MOEA) through pymoo's own ask/tell.

pymoo works in generations: ``algorithm.ask()`` gives a population, ``algorithm.tell()`` wants all of
it evaluated. The strategy hands the population out one individual at a time and returns ``None``
from ``ask`` while the rest of the generation is still in flight (the generation barrier). Objectives
are minimised (maximised ones negated); a failed trial or a constraint violation becomes pymoo's
inequality constraint ``G > 0``, so the algorithm ranks it behind every feasible individual.

The whole state (algorithm, current population, results so far, numbering) is cloudpickled to
``pymoo.pkl`` after every ask and tell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from archbench.search.checkpoint import Checkpoint
from archbench.search.strategy import STRATEGIES, Feedback, Strategy, Suggestion

_FAILED_G = 1e6  # constraint violation given to a failed trial (worse than any real violation)


@dataclass
class _State:
    algorithm: Any
    problem: Any
    next_number: int = 0
    told: int = 0
    pop: Any = None  # the generation being evaluated
    numbers: list[int] = field(default_factory=list)  # trial number of each individual in pop
    handed: int = 0  # individuals of pop handed out so far
    results: dict[int, tuple[np.ndarray, float]] = field(default_factory=dict)  # number -> (F, G)
    seeds: list[np.ndarray] = field(default_factory=list)  # enqueued X, placed in the first generation
    warm: list[tuple[np.ndarray, np.ndarray, float]] = field(default_factory=list)  # (X, F, G) from elsewhere


class PymooStrategy(Strategy):
    """Shared plumbing; subclasses build the algorithm."""

    def make_algorithm(self, pop_size: int, n_obj: int, operators: dict[str, Any]) -> Any:
        raise NotImplementedError

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ckpt = Checkpoint(self.state_dir / "pymoo.pkl")
        state = self._ckpt.load()
        if state is None:
            state = self._fresh()
            self._ckpt.save(state)
        self._state: _State = state

    def _fresh(self) -> _State:
        from pymoo.core.problem import Problem
        from pymoo.core.termination import NoTermination
        from pymoo.operators.crossover.sbx import SBX
        from pymoo.operators.mutation.pm import PM
        from pymoo.operators.repair.rounding import RoundingRepair
        from pymoo.operators.sampling.rnd import IntegerRandomSampling

        xl, xu = self.space.bounds()
        problem = Problem(n_var=len(xl), n_obj=len(self.objectives), n_ieq_constr=1, xl=xl, xu=xu, vtype=int)
        operators = {
            "sampling": IntegerRandomSampling(),
            "crossover": SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
            "mutation": PM(eta=20, vtype=float, repair=RoundingRepair()),
            "eliminate_duplicates": True,
        }
        algorithm = self.make_algorithm(self.population_size, len(self.objectives), operators)
        algorithm.setup(problem, termination=NoTermination(), seed=self.seed, verbose=False)
        return _State(algorithm=algorithm, problem=problem)

    def ask(self) -> Suggestion | None:
        st = self._state
        if st.pop is None and st.warm and st.next_number == 0:
            self._tell_warm(st)
        if st.pop is None:
            st.pop = st.algorithm.ask()
            if st.pop is None or len(st.pop) == 0:
                # Mating found no new offspring (a small or exhausted space): draw a random generation.
                from pymoo.operators.sampling.rnd import IntegerRandomSampling

                st.pop = IntegerRandomSampling()(st.problem, self.population_size, seed=self.seed + st.next_number)
            for i, x in enumerate(st.seeds[: len(st.pop)]):  # seed architectures lead the generation
                st.pop[i].set("X", np.asarray(x))
            st.seeds = st.seeds[len(st.pop) :]
            st.numbers = list(range(st.next_number, st.next_number + len(st.pop)))
            st.next_number += len(st.pop)
            st.handed = 0
            st.results = {}
        if st.handed >= len(st.pop):
            return None  # the generation is out; wait for its results
        i = st.handed
        st.handed += 1
        self._ckpt.save(st)
        return Suggestion(st.numbers[i], self.space.decode(st.pop[i].X))

    def tell(self, feedback: Feedback) -> None:
        from pymoo.core.evaluator import Evaluator
        from pymoo.problems.static import StaticProblem

        st = self._state
        number = feedback.suggestion.number
        if st.pop is None or number not in st.numbers or number in st.results:
            return
        sign = np.array([-1.0 if o.maximise else 1.0 for o in self.objectives])
        if feedback.values is not None:
            f = sign * np.asarray(feedback.values, dtype=float)
            g = float(feedback.violation)
        else:
            f = np.full(len(self.objectives), np.nan)
            g = _FAILED_G
        st.results[number] = (f, g)
        st.told += 1
        if len(st.results) == len(st.pop):
            F = np.array([st.results[n][0] for n in st.numbers])
            G = np.array([[st.results[n][1]] for n in st.numbers])
            # Failed individuals need finite F for pymoo's bookkeeping; G already ranks them last.
            worst = np.nanmax(np.where(np.isnan(F), -np.inf, F), axis=0)
            worst = np.where(np.isfinite(worst), worst, 0.0)
            F = np.where(np.isnan(F), worst + 1.0, F)
            Evaluator().eval(StaticProblem(st.problem, F=F, G=G), st.pop)
            st.algorithm.tell(infills=st.pop)
            st.pop, st.numbers, st.handed, st.results = None, [], 0, {}
        self._ckpt.save(st)

    def pending(self) -> list[Suggestion]:
        st = self._state
        if st.pop is None:
            return []
        return [
            Suggestion(st.numbers[i], self.space.decode(st.pop[i].X))
            for i in range(st.handed)
            if st.numbers[i] not in st.results
        ]

    def told(self) -> int:
        return self._state.told

    def enqueue(self, arch: Any) -> None:
        self._state.seeds.append(self.space.encode(arch))
        self._ckpt.save(self._state)

    def warm(self, arch: Any, values: tuple[float, ...], violation: float = 0.0) -> None:
        sign = np.array([-1.0 if o.maximise else 1.0 for o in self.objectives])
        self._state.warm.append((self.space.encode(arch), sign * np.asarray(values, float), float(violation)))
        self._ckpt.save(self._state)

    @staticmethod
    def _tell_warm(st: _State) -> None:
        """Initialise the algorithm's population from warm-start results (pymoo's tell before any ask)."""
        from pymoo.core.evaluator import Evaluator
        from pymoo.core.population import Population
        from pymoo.problems.static import StaticProblem

        X = np.array([x for x, _, _ in st.warm])
        F = np.array([f for _, f, _ in st.warm])
        G = np.array([[g] for _, _, g in st.warm])
        pop = Population.new(X=X)
        Evaluator().eval(StaticProblem(st.problem, F=F, G=G), pop)
        st.algorithm.tell(infills=pop)
        st.warm = []


@STRATEGIES.register("pymoo_nsga2")
class PymooNSGA2(PymooStrategy):
    def make_algorithm(self, pop_size: int, n_obj: int, operators: dict[str, Any]) -> Any:
        from pymoo.algorithms.moo.nsga2 import NSGA2

        return NSGA2(pop_size=pop_size, **operators)


@STRATEGIES.register("pymoo_nsga3")
class PymooNSGA3(PymooStrategy):
    def make_algorithm(self, pop_size: int, n_obj: int, operators: dict[str, Any]) -> Any:
        from pymoo.algorithms.moo.nsga3 import NSGA3
        from pymoo.util.ref_dirs import get_reference_directions

        partitions = max(1, pop_size - 1) if n_obj == 2 else 4 if n_obj == 3 else 2
        ref_dirs = get_reference_directions("das-dennis", n_obj, n_partitions=partitions)
        return NSGA3(ref_dirs=ref_dirs, pop_size=max(pop_size, len(ref_dirs)), **operators)


@STRATEGIES.register("pymoo_agemoea")
class PymooAGEMOEA(PymooStrategy):
    def make_algorithm(self, pop_size: int, n_obj: int, operators: dict[str, Any]) -> Any:
        from pymoo.algorithms.moo.age import AGEMOEA

        return AGEMOEA(pop_size=pop_size, **operators)
