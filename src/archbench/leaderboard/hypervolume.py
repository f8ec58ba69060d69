"""Hypervolume of each group's rows (per task, budget, data and device) with pymoo's indicator.

Default reference point (when none is given): per group and objective, the worst value among the
group's rows plus 10 % of the group's range in that objective (10 % of the value's magnitude, or 1,
when every row has the same value). Defaults therefore differ between groups; pass ``ref`` to compare
hypervolumes across groups or runs. Points that do not strictly dominate the reference point add nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from archbench.errors import ConfigError
from archbench.leaderboard.objectives import Objective
from archbench.leaderboard.pareto import complete_expr, group_columns, nondominated, with_groups

REF_MARGIN = 0.1
DEFAULT_REF_RULE = "worst value + 10% of the range per objective"


def to_minimisation(points: np.ndarray, objectives: Sequence[Objective]) -> np.ndarray:
    signs = np.array([-1.0 if o.maximise else 1.0 for o in objectives])
    return points * signs


def default_ref(points_min: np.ndarray) -> np.ndarray:
    """The documented default reference point for minimisation-form ``points_min``."""
    worst = points_min.max(axis=0)
    span = worst - points_min.min(axis=0)
    fallback = np.where(worst != 0, np.abs(worst) * REF_MARGIN, 1.0)
    return worst + np.where(span > 0, span * REF_MARGIN, fallback)


def hypervolume_of(points_min: np.ndarray, ref_min: np.ndarray) -> float:
    """pymoo's hypervolume of minimisation-form points against ``ref_min``."""
    from pymoo.indicators.hv import HV

    if len(points_min) == 0:
        return 0.0
    inside = np.all(points_min < ref_min, axis=1)
    if not inside.any():
        return 0.0
    return float(HV(ref_point=ref_min)(points_min[inside]))


def hypervolume_table(
    df: pl.DataFrame,
    objectives: Sequence[Objective],
    ref: Sequence[float] | None = None,
    mix_hardware: bool = False,
) -> pl.DataFrame:
    """One row per (task, budget, device_name, data_digest) group (no device with ``mix_hardware``): rows, front
    size, the reference point and the hypervolume."""
    if ref is not None and len(ref) != len(objectives):
        raise ConfigError(f"--ref has {len(ref)} values but there are {len(objectives)} objectives")
    names = [o.name for o in objectives]
    groups = group_columns(mix_hardware)
    work = with_groups(df).with_columns(complete_expr(objectives).alias("__ok__"))
    records = []
    for part in work.partition_by(groups, maintain_order=True) if work.height else []:
        usable = part.filter(pl.col("__ok__"))
        points = to_minimisation(usable.select(names).cast(pl.Float64).to_numpy(), objectives)
        if ref is not None:
            ref_min = to_minimisation(np.asarray(ref, dtype=float)[None, :], objectives)[0]
            source = "given"
        elif len(points):
            ref_min = default_ref(points)
            source = DEFAULT_REF_RULE
        else:
            ref_min, source = np.full(len(names), np.nan), "no rows"
        front = int(nondominated(points, [False] * len(names)).sum()) if len(points) else 0
        record = {g: part[g][0] for g in groups}
        record.update(
            {
                "rows": usable.height,
                "missing_objective": part.height - usable.height,
                "front": front,
                "hypervolume": hypervolume_of(points, ref_min) if len(points) else None,
                "ref": [float(v) for v in to_minimisation(ref_min[None, :], objectives)[0]],
                "ref_rule": source,
            }
        )
        records.append(record)
    schema = {g: pl.String() for g in groups} | {
        "rows": pl.Int64(),
        "missing_objective": pl.Int64(),
        "front": pl.Int64(),
        "hypervolume": pl.Float64(),
        "ref": pl.List(pl.Float64()),
        "ref_rule": pl.String(),
    }
    return pl.DataFrame(records, schema=schema)
