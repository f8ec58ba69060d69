"""Picking one model: the best row under bounds (:func:`pick_row`) and the knee of a front (:func:`knee_row`).

Both refuse rows from several tasks, budgets or data (``data_digest``), and from several devices unless
hardware is mixed on purpose: a latency bound or a trade-off means something on one device only, a
longer budget's loss beats any shorter one's, and a loss on one corpus says nothing of another's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from archbench.constraints import Constraint, _shown, constraints_expr
from archbench.errors import ConfigError
from archbench.leaderboard.objectives import Objective
from archbench.leaderboard.pareto import complete_expr, group_columns, with_groups

TIE_BREAK = ("latency_ms", "arch_id")  # after the objective; then latest created_at, study, trial


_FLAGS = {
    "task": "--task",
    "budget": "--budget",
    "data_digest": "--data-digest",
    "device_name": "--hardware (or --mix-hardware)",
}


def check_one_group(df: pl.DataFrame, mix_hardware: bool, what: str) -> None:
    """Refuse ``df`` when it spans several tasks, budgets or data (or devices, unless ``mix_hardware``); a
    null ``data_digest`` (rows from before it was recorded) counts as data of its own, ``unknown``."""
    df = with_groups(df)
    for column in group_columns(mix_hardware):
        values = sorted(_shown_value(v) for v in df[column].unique().to_list())
        if len(values) > 1:
            flag = _FLAGS[column]
            shown = ", ".join(values[:6]) + (" ..." if len(values) > 6 else "")
            raise ConfigError(f"{what} rows from {len(values)} {column}s ({shown}); pick one with {flag}")


def _shown_value(value: Any) -> str:
    return "''" if value == "" else "unknown" if value is None else str(value)


def _order(df: pl.DataFrame, first: Sequence[tuple[str, bool]]) -> pl.DataFrame:
    """``df`` sorted by ``first`` (column, descending), then the documented deterministic tie-break."""
    keys = [*first, ("latency_ms", False), ("arch_id", False), ("created_at", True), ("study", False), ("trial", False)]
    seen: set[str] = set()
    cols, desc = [], []
    for c, d in keys:
        if c in df.columns and c not in seen:
            seen.add(c)
            cols.append(c)
            desc.append(d)
    return df.sort(cols, descending=desc, nulls_last=True, maintain_order=True)


def _closest(df: pl.DataFrame, constraints: Sequence[Constraint]) -> str:
    """``lowest latency_ms 25.3, lowest params 2e+06``: how close the rows come to each bound."""
    parts = []
    for c in constraints:
        col = df[c.metric].cast(pl.Float64).fill_nan(None).drop_nulls() if c.metric in df.columns else None
        if col is None or col.len() == 0:
            parts.append(f"no row has {c.metric}")
            continue
        best = col.min() if c.upper else col.max()
        parts.append(f"{'lowest' if c.upper else 'highest'} {c.metric} {_shown(float(best))}")  # type: ignore[arg-type]
    return ", ".join(parts)


def pick_row(
    df: pl.DataFrame, objective: Objective, constraints: Sequence[Constraint], mix_hardware: bool = False
) -> dict[str, Any]:
    """The best row of ``df`` by ``objective`` among those meeting every constraint.

    Rows missing the objective are not considered. Ties: lower latency_ms, then arch_id (then the
    latest row, study, trial). No qualifying row: one line with how many were considered and the
    best value each bounded metric reaches, so the user sees how far off the bound is.
    """
    considered = df.filter(complete_expr([objective]))
    if considered.height == 0:
        raise ConfigError(f"no rows with {objective.name} to pick from ({df.height} rows pass the filters)")
    check_one_group(considered, mix_hardware, "pick would compare")
    ok = considered.filter(constraints_expr(constraints))
    if ok.height == 0:
        bounds = ", ".join(map(str, constraints))
        raise ConfigError(
            f"no row meets {bounds}: considered {considered.height} rows with {objective.name}; "
            f"{_closest(considered, constraints)}"
        )
    return _order(ok, [(objective.name, objective.maximise)]).row(0, named=True)


def knee_index(points_min: np.ndarray) -> tuple[int, np.ndarray]:
    """Index of the knee of a front given in minimisation form, and every point's distance.

    Normal-boundary-intersection knee (Das 1999, "On characterizing the 'knee' of the Pareto curve
    based on normal-boundary intersection"): objectives are scaled to [0, 1] over the front, the
    hyperplane through the front's extreme points (each objective's best point) is drawn, and the knee
    is the point farthest from it on the side of the ideal point (in 2-D: farthest below the line
    joining the two ends). Distances are signed (negative beyond the plane, on a concave front).
    Ties go to the lowest index. One point: it; two points: the first (callers order by the first
    objective, so that is the one best in it).
    """
    n, k = points_min.shape
    if n <= 2:
        return 0, np.zeros(n)
    lo, hi = points_min.min(axis=0), points_min.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    x = (points_min - lo) / span
    # Each objective's extreme point: the best in it, ties to the best sum of the others (then first).
    extremes = np.stack([x[np.lexsort((x.sum(axis=1), x[:, j]))[0]] for j in range(k)])
    normal, *_ = np.linalg.lstsq(extremes, np.ones(k), rcond=None)
    offset = 1.0
    if not np.all(np.isfinite(normal)) or np.abs(extremes @ normal - 1).max() > 1e-9:
        normal = np.ones(k)  # the extremes span no plane (degenerate): use sum(x) = const through their mean
        offset = float(np.mean(extremes.sum(axis=1)))
    distance = (offset - x @ normal) / np.linalg.norm(normal)
    return int(np.argmax(distance)), distance


def knee_row(front: pl.DataFrame, objectives: Sequence[Objective], mix_hardware: bool = False) -> dict[str, Any]:
    """The knee row of ``front`` (one group's non-dominated rows), with its ``knee_distance``.

    Rows with the same objective values count once (the tie-break picks which row stands for them).
    """
    if front.height == 0:
        raise ConfigError("the front is empty: no row has every objective (check the filters)")
    check_one_group(front, mix_hardware, "the front has")
    names = [o.name for o in objectives]
    ordered = _order(front, [(o.name, o.maximise) for o in objectives])
    unique = ordered.unique(subset=names, keep="first", maintain_order=True)
    signs = np.array([-1.0 if o.maximise else 1.0 for o in objectives])
    points = unique.select(names).cast(pl.Float64).to_numpy() * signs
    i, distance = knee_index(points)
    row = unique.row(i, named=True)
    row["knee_distance"] = float(distance[i])
    return row
