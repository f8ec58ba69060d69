"""Conformance suite: every registered strategy keeps the ask/tell contract and resumes from disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from archbench import SearchSpace
from archbench.leaderboard.objectives import Objective
from archbench.search import STRATEGIES, Feedback, Strategy, Suggestion

SPACE = SearchSpace.from_dict(
    {
        "name": "toy",
        "fields": {
            "depth": [1, 2, 3, 4], "width": [32, 48, 64], "heads": [2, 3, 4], "residual": ["pre_ln", "rezero"],
            "attention": ["dense", "sliding_window"], "window": [8, 16], "max_seq_len": 32, "quant": ["fp32", "bf16"],
        },
    }
)  # fmt: skip
OBJECTIVES = (Objective("loss", "min"), Objective("speed", "max"))


def score(s: Suggestion) -> tuple[float, float]:
    a = s.arch
    return (1.0 / (a.depth * a.width), 100.0 / (a.depth * a.width) + (a.attention == "sliding_window"))


def make(name: str, tmp: Path, seed: int = 0) -> Strategy:
    return STRATEGIES.get(name)(SPACE, OBJECTIVES, seed, tmp / name, study="toy", population_size=6)


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_ask_tell_contract(name: str, tmp_path: Path) -> None:
    strat = make(name, tmp_path)
    numbers: list[int] = []
    steps = 12 if name == "optuna_gp" else 20  # the GP refits at every ask: slow on 2 cores
    for step in range(steps):
        s = strat.ask()
        if s is None:  # a generation barrier: tell what is pending, then ask again
            for p in strat.pending():
                strat.tell(Feedback(p, score(p)))
            s = strat.ask()
        assert s is not None
        assert SPACE.contains(s.arch), "a strategy proposed an architecture outside the space"
        assert s.number not in numbers
        numbers.append(s.number)
        if step % 7 == 3:
            strat.tell(Feedback(s, None, status="failed"))  # failures are told, never crash
        else:
            strat.tell(Feedback(s, score(s)))
    assert strat.told() == steps
    assert strat.pending() == []
    strat.close()


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_state_survives_a_crash(name: str, tmp_path: Path) -> None:
    strat = make(name, tmp_path)
    asked = [strat.ask() for _ in range(3)]
    assert all(a is not None for a in asked)
    strat.tell(Feedback(asked[1], score(asked[1])))
    del strat  # the driver dies: nothing is closed or flushed by hand
    again = make(name, tmp_path)
    assert again.told() == 1
    pending = again.pending()
    assert sorted(p.number for p in pending) == sorted([asked[0].number, asked[2].number])
    assert {p.arch for p in pending} == {asked[0].arch, asked[2].arch}
    for p in pending:
        again.tell(Feedback(p, score(p)))
    assert again.told() == 3
    nxt = again.ask()
    assert nxt is not None and nxt.number not in {a.number for a in asked}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["optuna_nsga2", "pymoo_nsga2", "optuna_tpe"])
def test_strategies_learn_on_a_toy_problem(name: str, tmp_path: Path) -> None:
    """After 60 trials the strategy's best seen 'speed' beats the median of random proposals."""
    strat = make(name, tmp_path, seed=1)
    seen = []
    while strat.told() < 60:
        s = strat.ask()
        if s is None:
            continue
        v = score(s)
        seen.append(v)
        strat.tell(Feedback(s, v))
    late = np.array([v[1] for v in seen[-20:]])
    rand = np.array([score(Suggestion(0, a))[1] for a in SPACE.sample(200, seed=9)])
    assert np.median(late) > np.median(rand)
