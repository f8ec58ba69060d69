"""`TrialResult`: one evaluated architecture, as it flows from the evaluators to the leaderboard.

Torch-free. A metric that could not be measured is ``None`` with a reason in ``null_reasons``, never 0.
``to_row()`` flattens it into the leaderboard's one-row-per-trial form: the Architecture's fields as
columns, ``arch_id``, the run's identity, status, metrics, hardware fingerprint, run settings and timestamps.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from archbench.metrics import TABLE
from archbench.run_settings import RunSettings
from archbench.search_space.architecture import Architecture

STATUSES = ("ok", "failed", "diverged", "oom", "unsupported", "infeasible")

# Known metric columns and their meaning (from the metric table). Evaluators and measurement fill these
# names; others may be added (any extra metric becomes a float column), but these are the ones archbench knows.
METRICS: dict[str, str] = {m.name: m.description for m in TABLE}

# The null reason of a quantized model's quality that was not computed (a funnel's screening rungs).
NOT_VALIDATED = "not validated: validate_quant=False (a screening rung of a funnel ranks on other metrics)"


def utc_now() -> str:
    """An ISO-8601 UTC timestamp with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class TrialResult:
    """The outcome of evaluating one architecture on one task and budget."""

    arch: Architecture
    task: str
    status: str
    reason: str = ""  # why the status is not ok (or a note); "" when ok
    study: str = ""
    trial: int | None = None
    budget: str = ""  # e.g. "steps=300" or "seconds=60"
    seed: int = 0
    metrics: Mapping[str, float | int | None] = field(default_factory=dict)
    null_reasons: Mapping[str, str] = field(default_factory=dict)  # metric -> why it is None
    hardware: Mapping[str, Any] = field(default_factory=dict)  # fingerprint: device_name, device_kind, ...
    settings: RunSettings = field(default_factory=RunSettings)  # how it was run: recipe, deployment, version
    data: Mapping[str, Any] = field(default_factory=dict)  # the data's columns: data_digest, ... (Task.data_columns)
    feasible: bool | None = None  # judged against the study's constraints (None: none given)
    violation: float | None = None  # total constraint violation (0 when feasible)
    cached: bool = False  # row reused from an earlier identical measurement
    weights: str | None = None  # path of the trained float model's safetensors, when they were kept
    started_at: str = field(default_factory=utc_now)
    finished_at: str = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status={self.status!r}: must be one of {', '.join(STATUSES)}")
        for name, value in self.metrics.items():
            if value is None:
                if name not in self.null_reasons:
                    raise ValueError(f"metric {name} is None without a reason in null_reasons")
            elif isinstance(value, float) and math.isnan(value):
                raise ValueError(f"metric {name} is NaN: use None with a reason")

    @property
    def arch_id(self) -> str:
        return self.arch.arch_id

    def metric(self, name: str) -> float | int | None:
        return self.metrics.get(name)

    def to_row(self) -> dict[str, Any]:
        """The flat leaderboard row (plain Python scalars)."""
        row: dict[str, Any] = {
            "arch_id": self.arch_id,
            "study": self.study,
            "trial": self.trial,
            "task": self.task,
            "budget": self.budget,
            "seed": self.seed,
            "status": self.status,
            "error": self.reason,
            "feasible": self.feasible,
            "violation": self.violation,
            "cached": self.cached,
            "data_digest": None,  # every row has the column; null: the data could not be identified
            **self.data,
        }
        row.update(self.arch.to_dict())
        for name in METRICS:
            row[name] = self.metrics.get(name)
        for name, value in self.metrics.items():
            row.setdefault(name, value)
        row["null_reasons"] = json.dumps(dict(self.null_reasons), sort_keys=True)
        row.update(self.hardware)
        row.update(self.settings.columns())
        row["weights"] = self.weights
        row["started_at"] = self.started_at
        row["created_at"] = self.finished_at
        return row
