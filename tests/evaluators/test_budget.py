"""Budget parsing, printing and step arithmetic; the learning-rate schedule."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archbench.errors import ConfigError
from archbench.evaluators import Budget
from archbench.evaluators.schedule import lr_factor


@pytest.mark.parametrize("text", ["steps=300", "tokens=200000", "seconds=30", "seconds=2.5", "steps=1"])
def test_budget_prints_back_the_same_string(text: str) -> None:
    assert str(Budget.parse(text)) == text
    assert Budget.parse(text) == Budget.parse(str(Budget.parse(text)))


@given(unit=st.sampled_from(["steps", "tokens", "seconds"]), amount=st.integers(1, 10**9))
def test_budget_round_trips_any_positive_integer(unit: str, amount: int) -> None:
    budget = Budget.parse(f"{unit}={amount}")
    assert (budget.unit, budget.amount, str(budget)) == (unit, amount, f"{unit}={amount}")


@pytest.mark.parametrize(
    "text",
    ["", "steps", "steps=", "steps=0", "steps=-5", "steps=1.5", "tokens=abc", "epochs=3", "seconds=0",
     "seconds=nan", "seconds=inf", "seconds=-1", "300"],
)  # fmt: skip
def test_bad_budget_is_one_config_error_line_saying_what_is_allowed(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        Budget.parse(text)
    message = str(info.value)
    assert "\n" not in message
    assert "steps=N" in message and "tokens=N" in message and "seconds=X" in message


def test_budget_is_frozen_and_hashable() -> None:
    budget = Budget.parse("steps=10")
    with pytest.raises(AttributeError):
        budget.amount = 20  # type: ignore[misc]
    assert len({budget, Budget("steps", 10)}) == 1


def test_total_steps_and_scaling() -> None:
    assert Budget.parse("steps=100").total_steps(2048) == 100
    assert Budget.parse("tokens=5000").total_steps(2048) == 3  # ceil(5000 / 2048)
    assert Budget.parse("tokens=10").total_steps(2048) == 1
    assert Budget.parse("seconds=5").total_steps(2048) is None
    assert str(Budget.parse("steps=100").scaled(4)) == "steps=400"
    assert str(Budget.parse("seconds=2.5").scaled(4)) == "seconds=10"


def test_schedule_warms_up_linearly_then_decays_by_cosine_to_the_floor() -> None:
    total, warm, floor = 100, 0.1, 0.1
    factors = [lr_factor((s + 1) / total, warm, floor) for s in range(total)]
    assert factors[0] == pytest.approx(0.1)  # step 1 of a 10-step warm-up
    assert factors[9] == pytest.approx(1.0)
    assert all(a < b for a, b in itertools.pairwise(factors[:10]))
    assert all(a >= b for a, b in itertools.pairwise(factors[9:]))
    assert factors[-1] == pytest.approx(floor)
    mid = lr_factor(warm + (1 - warm) / 2, warm, floor)
    assert mid == pytest.approx(floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi / 2)))


def test_every_default_budget_is_the_one_default() -> None:
    """The default budget is written where importing torch is unwelcome; they must not drift apart."""
    from importlib import resources

    import yaml

    from archbench.evaluators import DEFAULT_BUDGET
    from archbench.search import SearchConfig
    from archbench.search.trial_evaluators import LookupEvaluator, TrainEvaluator

    charlm = yaml.safe_load(resources.files("archbench.conf").joinpath("task/charlm.yaml").read_text())
    defaults = {
        "charlm.yaml": charlm["budget"],
        "SearchConfig": SearchConfig.__dataclass_fields__["budget"].default,
        "TrainEvaluator": TrainEvaluator.budget,
        "LookupEvaluator": LookupEvaluator.budget,
    }
    assert defaults == dict.fromkeys(defaults, str(DEFAULT_BUDGET))
