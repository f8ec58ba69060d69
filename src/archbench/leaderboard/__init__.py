"""The leaderboard: a crash-safe parquet dataset of every trial, with Pareto fronts, hypervolume, SQL,
plots and export back to a runnable config. Torch-free.
"""

from __future__ import annotations

from archbench.leaderboard.api import DEFAULT_ROOT, ENV_VAR, Leaderboard, default_root
from archbench.leaderboard.filters import Filters
from archbench.leaderboard.maintenance import CheckReport, CompactReport, FixReport
from archbench.leaderboard.objectives import Objective, parse_objectives
from archbench.leaderboard.schema import SCHEMA_VERSION, base_schema
from archbench.leaderboard.store import LeaderboardWarning, PartInfo

__all__ = [
    "DEFAULT_ROOT",
    "ENV_VAR",
    "SCHEMA_VERSION",
    "CheckReport",
    "CompactReport",
    "Filters",
    "FixReport",
    "Leaderboard",
    "LeaderboardWarning",
    "Objective",
    "PartInfo",
    "base_schema",
    "default_root",
    "parse_objectives",
]
