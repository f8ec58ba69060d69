"""Objectives (``val_loss:min``) and the check that they name numeric columns of the leaderboard."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from archbench.errors import ConfigError
from archbench.metrics import of_column

SENSES = ("min", "max")
DEFAULT_OBJECTIVES = "val_loss:min,latency_ms:min"


@dataclass(frozen=True)
class Objective:
    """One column to minimise or maximise."""

    name: str
    sense: str = "min"

    def __post_init__(self) -> None:
        if self.sense not in SENSES:
            raise ConfigError(f"objective {self.name}:{self.sense}: the direction must be min or max")

    @property
    def maximise(self) -> bool:
        return self.sense == "max"

    def __str__(self) -> str:
        return f"{self.name}:{self.sense}"

    @classmethod
    def parse(cls, spec: str | Objective | tuple[str, str]) -> Objective:
        """``"val_loss"``, ``"val_acc:max"``, ``("latency_ms", "min")`` or an Objective."""
        if isinstance(spec, Objective):
            return spec
        if isinstance(spec, tuple):
            return cls(*spec)
        name, sep, sense = str(spec).strip().partition(":")
        name, sense = name.strip(), sense.strip().lower()
        if not name:
            raise ConfigError(f"empty objective in {spec!r}: write NAME or NAME:min / NAME:max")
        if not sep:  # a known metric's own direction, also at a named workload (ttft_ms@batch32)
            metric = of_column(name)
            sense = metric.direction if metric is not None else "min"
        return cls(name, sense)


def parse_objectives(spec: str | Iterable[str | Objective | tuple[str, str]], minimum: int = 1) -> list[Objective]:
    """A list of objectives from ``"a:min,b:max"`` or a sequence; duplicates and too few are refused."""
    items = [s for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    objectives = [Objective.parse(s) for s in items]
    names = [o.name for o in objectives]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"objective {dup[0]!r} is given twice")
    if len(objectives) < minimum:
        raise ConfigError(f"need at least {minimum} objectives, got {len(objectives)} ({', '.join(names) or 'none'})")
    return objectives


def numeric_columns(schema: Mapping[str, pl.DataType]) -> list[str]:
    return [n for n, t in schema.items() if t.is_numeric()]


def check_columns(objectives: Sequence[Objective], schema: Mapping[str, pl.DataType], what: str = "objective") -> None:
    """Every objective must be a numeric column; the error names the closest one."""
    numeric = numeric_columns(schema)
    for o in objectives:
        if o.name in numeric:
            continue
        if o.name in schema:
            raise ConfigError(
                f"{what} {o.name!r} is not numeric ({schema[o.name]}); numeric columns: {', '.join(numeric)}"
            )
        close = difflib.get_close_matches(o.name, numeric, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown {what} {o.name!r}{hint}; numeric columns: {', '.join(numeric)}")
