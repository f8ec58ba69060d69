"""Constraints on leaderboard metrics, written as users think of them: ``latency_ms<=20``.

    parse_constraints("[latency_ms<=20, peak_mem_mb<=40000]")   # or "a<=1,b<=2", a list of such strings,
    parse_constraints({"latency_ms": 20})                       # a mapping: each metric <= its bound
    judge(row, constraints) -> (feasible, violation, reason)

A constraint holds on a row when the row's metric is present (not null, not NaN) and compares with the
bound as written. A missing metric never passes and never counts as 0: :func:`judge` calls the row's
feasibility unknown (None) unless another constraint is already violated, and the query-time filter
(:func:`constraints_expr`) drops the row.

Violation is relative, ``(value - bound) / max(|bound|, TINY)`` (mirrored for ``>=``/``>``), so constraints
in different units add up sensibly; 0 when satisfied. A strict bound met exactly (``latency_ms<20`` at
20) counts as the smallest positive violation, :data:`STRICT_EPS`, so ``violation > 0`` always means
"violated". :meth:`Constraint.signed` gives the same number with its sign kept (<= 0 when satisfied),
the form Optuna's ``constraints_func`` and pymoo's ``G`` expect.

:data:`PRETRAIN_METRICS` are the metrics measured without training (size, latency, energy, memory):
constraints on them (also at a named workload, ``ttft_ms@batch32<=50``) can be checked before a candidate
is trained. Torch-free.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from archbench.errors import ConfigError
from archbench.metrics import names, of_column

OPS = ("<=", "<", ">=", ">")
ALIASES = {"≤": "<=", "≥": ">=", "=<": "<=", "=>": ">="}
NEGATION = {"<=": ">", "<": ">=", ">=": "<", ">": "<="}
TINY = 1e-12  # the smallest scale of a relative violation (a bound of 0)
STRICT_EPS = sys.float_info.epsilon  # violation of a strict bound met exactly
PRETRAIN_METRICS = names(pretrain=True)  # measured without training: see archbench.metrics
ALLOWED = "write METRIC OP NUMBER with OP one of <=, <, >=, > (e.g. latency_ms<=20), several separated by commas"

# A column: a metric, or one measured at a named workload (decode_ms_per_token@chat8k; archbench.metrics).
_METRIC = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(@[A-Za-z0-9_]+)?")
_ITEM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*(?:@[A-Za-z0-9_]+)?)\s*(<=|>=|=<|=>|≤|≥|<|>)\s*(\S.*?)\s*")


def _number(value: float) -> str:
    """A float as short as it round-trips: ``20``, ``150000000``, ``0.5``, ``1e+20``."""
    if value == int(value) and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _shown(value: float) -> str:
    """A measured value for messages: ``25.3``, ``150000000``, ``0.000123``."""
    if value == int(value) and abs(value) < 1e16:
        return str(int(value))
    return f"{value:.6g}"


def _value(value: Any) -> float | None:
    """The row's metric as a float, or None when missing (null, NaN or not a number)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


@dataclass(frozen=True)
class Constraint:
    """``metric op bound``: a bound on one leaderboard metric (op one of ``<=``, ``<``, ``>=``, ``>``)."""

    metric: str
    op: str
    bound: float

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not _METRIC.fullmatch(self.metric):
            raise ConfigError(f"bad constraint metric {self.metric!r}: {ALLOWED}")
        if self.op not in OPS:
            raise ConfigError(f"bad constraint operator {self.op!r} in {self.metric}{self.op}{self.bound}: {ALLOWED}")
        if isinstance(self.bound, bool) or not isinstance(self.bound, int | float) or not math.isfinite(self.bound):
            raise ConfigError(f"bad constraint bound {self.bound!r} for {self.metric}: it must be a finite number")
        object.__setattr__(self, "bound", float(self.bound))

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{_number(self.bound)}"

    @classmethod
    def parse(cls, text: str | Constraint) -> Constraint:
        """One constraint from ``"latency_ms<=20"`` (spaces allowed; ``≤``/``≥`` accepted)."""
        if isinstance(text, Constraint):
            return text
        m = _ITEM.fullmatch(str(text))
        if not m:
            raise ConfigError(f"bad constraint {text!r}: {ALLOWED}")
        metric, op, number = m.groups()
        try:
            bound = float(number)
        except ValueError:
            raise ConfigError(f"bad constraint {text!r}: the bound {number!r} is not a number; {ALLOWED}") from None
        if not math.isfinite(bound):
            raise ConfigError(f"bad constraint {text!r}: the bound must be a finite number")
        return cls(metric, ALIASES.get(op, op), bound)

    @property
    def upper(self) -> bool:
        """True for an upper bound (``<=``, ``<``): smaller values are better for it."""
        return self.op in ("<=", "<")

    def holds(self, value: Any) -> bool | None:
        """Whether ``value`` satisfies the constraint; None when it is missing."""
        v = self.signed(value)
        return None if v is None else v <= 0

    def signed(self, value: Any) -> float | None:
        """Relative distance past the bound: <= 0 when satisfied, > 0 by how much it is violated; None if missing."""
        v = _value(value)
        if v is None:
            return None
        excess = (v - self.bound) if self.upper else (self.bound - v)
        out = excess / max(abs(self.bound), TINY)
        if self.op in ("<", ">") and out == 0:
            return STRICT_EPS
        return out

    def violation(self, value: Any) -> float | None:
        """0 when ``value`` satisfies the constraint, else the relative excess; None when it is missing."""
        v = self.signed(value)
        return None if v is None else max(v, 0.0)

    def expr(self) -> pl.Expr:
        """Polars: True where the metric is present and within the bound (False for null or NaN)."""
        col = pl.col(self.metric)
        compare = {"<=": col <= self.bound, "<": col < self.bound, ">=": col >= self.bound, ">": col > self.bound}
        present = col.is_not_null() & col.cast(pl.Float64).is_not_nan()
        return (present & compare[self.op]).fill_null(False)

    def describe_failure(self, value: Any) -> str:
        """``latency_ms=25.3 > 20`` (the relation that holds instead), or ``latency_ms missing``."""
        v = _value(value)
        if v is None:
            return f"{self.metric} missing"
        return f"{self.metric}={_shown(v)} {NEGATION[self.op]} {_number(self.bound)}"


ConstraintsArg = str | Constraint | Mapping[str, float] | Iterable[str | Constraint] | None


def _items(spec: ConstraintsArg) -> list[str | Constraint]:
    if spec is None:
        return []
    if isinstance(spec, Constraint):
        return [spec]
    if isinstance(spec, Mapping):
        out: list[str | Constraint] = []
        for metric, bound in spec.items():
            if isinstance(bound, bool) or not isinstance(bound, int | float):
                raise ConfigError(f"bad bound {bound!r} for {metric}: give a number (it means {metric}<=BOUND)")
            out.append(Constraint(str(metric), "<=", bound))
        return out
    if isinstance(spec, str):
        text = spec.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1].strip()
        if not text:
            return []
        parts = [p.strip().strip("'\"").strip() for p in text.split(",")]
        for p in parts:
            if not p:
                raise ConfigError(f"empty constraint in {spec!r}: {ALLOWED}")
        return list(parts)
    if isinstance(spec, Iterable):
        out = []
        for item in spec:
            if isinstance(item, Constraint):
                out.append(item)
            elif isinstance(item, str):
                out.extend(_items(item) or [item])  # "" alone is refused below
            else:
                raise ConfigError(f"bad constraint {item!r}: {ALLOWED}")
        return out
    raise ConfigError(f"bad constraints {spec!r}: {ALLOWED}")


def parse_constraints(spec: ConstraintsArg) -> tuple[Constraint, ...]:
    """Constraints from ``"[a<=1, b<=2]"``, ``"a<=1,b<=2"``, a list of such strings, Constraints or a mapping.

    A mapping ``{"latency_ms": 20}`` means ``latency_ms<=20``. None, ``""`` and ``"[]"`` give no constraints.
    The same metric and operator twice is refused (a typo, not a tighter bound).
    """
    out = tuple(Constraint.parse(item) for item in _items(spec))
    seen: set[tuple[str, str]] = set()
    for c in out:
        if (c.metric, c.op) in seen:
            raise ConfigError(f"constraint {c.metric}{c.op} is given twice; keep the one you mean")
        seen.add((c.metric, c.op))
    return out


def constraints_expr(constraints: Iterable[Constraint]) -> pl.Expr:
    """Polars: True where every constraint holds (a null or NaN metric fails its constraint)."""
    return pl.all_horizontal([pl.lit(True), *(c.expr() for c in constraints)])


def judge(row: Mapping[str, Any], constraints: Iterable[Constraint]) -> tuple[bool | None, float | None, str]:
    """``(feasible, violation, reason)`` of ``row`` under ``constraints``.

    No constraints: ``(None, None, "")``. All satisfied: ``(True, 0.0, "")``. One violated:
    ``(False, total relative violation of the measured ones, "latency_ms=25.3 > 20")``. None violated
    but a metric missing: ``(None, None, "params missing")``: feasibility is unknown, never assumed.
    """
    constraints = tuple(constraints)
    if not constraints:
        return None, None, ""
    total, violated, missing = 0.0, [], []
    for c in constraints:
        value = row.get(c.metric)
        v = c.violation(value)
        if v is None:
            missing.append(c.describe_failure(value))
        elif v > 0:
            total += v
            violated.append(c.describe_failure(value))
    if violated:
        return False, total, ", ".join(violated + missing)
    if missing:
        return None, None, ", ".join(missing)
    return True, 0.0, ""


def is_pretrain(column: str) -> bool:
    """Whether ``column`` is measured without training: a :data:`PRETRAIN_METRICS` metric, also at a named
    workload (``decode_ms_per_token@chat8k``)."""
    metric = of_column(column)
    return metric is not None and metric.name in PRETRAIN_METRICS


def pretrain(constraints: Iterable[Constraint]) -> tuple[Constraint, ...]:
    """Those of ``constraints`` that can be checked before training (on :data:`PRETRAIN_METRICS`)."""
    return tuple(c for c in constraints if is_pretrain(c.metric))
