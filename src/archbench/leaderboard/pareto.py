"""Non-dominated fronts and Pareto ranks per (task, budget, device_name, data_digest) group, with moocore.

A row is on the front when no other row of its group is at least as good in every objective and
strictly better in one; exact duplicates of a front row are all on the front (rank 0). Rows with a
null objective take part in no comparison: their ``pareto_front`` and ``pareto_rank`` are null.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from archbench.leaderboard.objectives import Objective

_IDX = "__row__"


def group_columns(mix_hardware: bool = False) -> list[str]:
    """Fronts are per task, budget, data and device; ``mix_hardware`` compares devices (never tasks,
    budgets or data).

    Rows trained at different budgets are never compared: a longer budget's loss would dominate. Nor are
    rows trained on different data (``data_digest``): a loss on one corpus says nothing of another's. A
    null digest (a row written before it was recorded) is a group of its own, "unknown", and never joins
    a front with rows of a known digest.
    """
    return ["task", "budget", "data_digest"] if mix_hardware else ["task", "budget", "device_name", "data_digest"]


def with_groups(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with a null ``data_digest`` where it has no such column (a frame built by hand, or rows from
    before the column): such rows are of unknown data, as the leaderboard reads old rows."""
    return df if "data_digest" in df.columns else df.with_columns(pl.lit(None, pl.String()).alias("data_digest"))


def nondominated(points: np.ndarray, maximise: Sequence[bool]) -> np.ndarray:
    """Boolean mask of the rows of ``points`` that no other row dominates (duplicates kept)."""
    import moocore

    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(moocore.is_nondominated(points, maximise=list(maximise), keep_weakly=True), dtype=bool)


def pareto_ranks(points: np.ndarray, maximise: Sequence[bool]) -> np.ndarray:
    """Non-dominated sorting: 0 for the front, 1 for the front of the rest, ... (duplicates share a rank)."""
    import moocore

    if len(points) == 0:
        return np.zeros(0, dtype=np.int64)
    if points.shape[1] == 1:  # moocore 0.3 ranks one minimised objective back to front: its rank is its sorted place
        values = -points[:, 0] if maximise[0] else points[:, 0]
        return np.unique(values, return_inverse=True)[1].astype(np.int64).reshape(-1)
    return np.asarray(moocore.pareto_rank(points, maximise=list(maximise)), dtype=np.int64)


def complete_expr(objectives: Sequence[Objective]) -> pl.Expr:
    """True where every objective is present (not null, not NaN)."""
    return pl.all_horizontal([pl.col(o.name).is_not_null() & pl.col(o.name).is_not_nan() for o in objectives])


def annotate(
    df: pl.DataFrame, objectives: Sequence[Objective], mix_hardware: bool = False, rank: bool = False
) -> pl.DataFrame:
    """``df`` with ``pareto_front`` (bool) and, when ``rank``, ``pareto_rank`` columns added.

    Both are null for rows missing an objective. Ranking every row costs more than finding the front
    (moocore's non-dominated sorting is quadratic beyond two objectives), so it is asked for explicitly.
    """
    names = [o.name for o in objectives]
    maximise = [o.maximise for o in objectives]
    groups = group_columns(mix_hardware)
    work = with_groups(df).with_row_index(_IDX).with_columns([pl.col(n).cast(pl.Float64) for n in names])
    work = work.filter(complete_expr(objectives)).select([_IDX, *groups, *names])
    idx_parts, front_parts, rank_parts = [], [], []
    for part in work.partition_by(groups, maintain_order=True) if work.height else []:
        points = part.select(names).to_numpy()
        idx_parts.append(part[_IDX].to_numpy())
        if rank:
            r = pareto_ranks(points, maximise)
            rank_parts.append(r)
            front_parts.append(r == 0)
        else:
            front_parts.append(nondominated(points, maximise))
    n = df.height
    front = np.zeros(n, dtype=bool)
    known = np.zeros(n, dtype=bool)
    ranks = np.zeros(n, dtype=np.int64)
    if idx_parts:
        idx = np.concatenate(idx_parts)
        known[idx] = True
        front[idx] = np.concatenate(front_parts)
        if rank:
            ranks[idx] = np.concatenate(rank_parts)
    known_s = pl.Series(known)
    out = df.with_columns(
        pl.when(known_s).then(pl.Series(front)).otherwise(None).alias("pareto_front"),
    )
    if rank:
        out = out.with_columns(pl.when(known_s).then(pl.Series(ranks)).otherwise(None).alias("pareto_rank"))
    return out
