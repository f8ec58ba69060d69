"""Multi-objective search: strategies behind one ask/tell contract and the driver loop on Ray."""

from __future__ import annotations

from archbench.search import optuna_strategies, pymoo_strategies, random_search  # noqa: F401  (registration)
from archbench.search.config import SearchConfig
from archbench.search.driver import run_search
from archbench.search.evaluator import TrialEvaluator
from archbench.search.executor import RayConfig
from archbench.search.report import SearchOutcome, print_outcome
from archbench.search.strategy import STRATEGIES, Feedback, Strategy, Suggestion
from archbench.search.trial_evaluators import TRIAL_EVALUATORS

__all__ = [
    "STRATEGIES",
    "TRIAL_EVALUATORS",
    "Feedback",
    "RayConfig",
    "SearchConfig",
    "SearchOutcome",
    "Strategy",
    "Suggestion",
    "TrialEvaluator",
    "print_outcome",
    "run_search",
]
