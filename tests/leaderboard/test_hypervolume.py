"""Hypervolume: pymoo's indicator, an exact grid count on integer points, and the default reference point."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from pymoo.indicators.hv import HV

from archbench.errors import ConfigError
from archbench.leaderboard import Objective
from archbench.leaderboard.hypervolume import default_ref, hypervolume_of, hypervolume_table


def grid_hv(points: np.ndarray, ref: np.ndarray) -> float:
    """Exact HV of integer points with an integer ref: count the unit cells some point dominates."""
    lo = points.min(axis=0).astype(int)
    count = 0
    for cell in itertools.product(*(range(int(a), int(b)) for a, b in zip(lo, ref, strict=True))):
        if np.any(np.all(points <= np.asarray(cell), axis=1)):
            count += 1
    return float(count)


@pytest.mark.parametrize("m", [2, 3, 4])
@pytest.mark.parametrize("seed", range(3))
def test_hv_equals_pymoo_and_exact_count(m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pts = rng.integers(0, 6, size=(40, m)).astype(float)
    ref = np.full(m, 6.0)
    ours = hypervolume_of(pts, ref)
    assert ours == pytest.approx(HV(ref_point=ref)(pts))
    assert ours == pytest.approx(grid_hv(pts, ref))


def test_table_matches_pymoo_per_group_with_max_objectives_and_default_ref() -> None:
    rng = np.random.default_rng(7)
    n = 200
    df = pl.DataFrame(
        {
            "task": ["t"] * n,
            "budget": ["steps=100"] * n,
            "device_name": rng.choice(["a", "b"], n),
            "loss": rng.uniform(1, 3, n),
            "acc": rng.uniform(0, 1, n),
            "ms": rng.uniform(1, 10, n),
        }
    ).with_columns(pl.when(pl.int_range(pl.len()) < 5).then(None).otherwise(pl.col("ms")).alias("ms"))
    objs = [Objective("loss"), Objective("acc", "max"), Objective("ms")]
    table = hypervolume_table(df, objs)
    assert table.height == 2
    for row in table.iter_rows(named=True):
        g = df.filter((pl.col("device_name") == row["device_name"]) & pl.col("ms").is_not_null())
        pts = g.select("loss", "acc", "ms").to_numpy() * np.array([1.0, -1.0, 1.0])
        worst, best = pts.max(axis=0), pts.min(axis=0)
        ref = worst + 0.1 * (worst - best)  # the documented default
        assert np.allclose(default_ref(pts), ref)
        assert row["ref"] == pytest.approx(list(ref * np.array([1.0, -1.0, 1.0])))
        assert row["hypervolume"] == pytest.approx(HV(ref_point=ref)(pts))
        assert row["rows"] == g.height
    assert table["missing_objective"].sum() == 5
    # A given ref is in the objectives' own units (acc's ref 0.0 is "worse than any accuracy").
    given = hypervolume_table(df, objs, ref=[3.5, 0.0, 11.0])
    g = df.filter((pl.col("device_name") == given["device_name"][0]) & pl.col("ms").is_not_null())
    pts = g.select("loss", "acc", "ms").to_numpy() * np.array([1.0, -1.0, 1.0])
    assert given["hypervolume"][0] == pytest.approx(HV(ref_point=np.array([3.5, 0.0, 11.0]))(pts))
    with pytest.raises(ConfigError, match="--ref has 2 values"):
        hypervolume_table(df, objs, ref=[1.0, 2.0])


def test_points_outside_the_ref_add_nothing_and_single_point_default() -> None:
    assert hypervolume_of(np.array([[5.0, 5.0]]), np.array([4.0, 4.0])) == 0.0
    assert hypervolume_of(np.array([[1.0, 1.0], [5.0, 0.0]]), np.array([4.0, 4.0])) == pytest.approx(9.0)
    one = np.array([[2.0, 0.0]])
    assert np.allclose(default_ref(one), [2.2, 1.0])  # no range: 10% of the value, or 1 at zero


def test_lb_hypervolume(filled) -> None:
    hv = filled.hypervolume(["val_loss", "latency_ms"], ref=[4.0, 10.0], task="charlm")
    assert hv.height == 3 and (hv["hypervolume"] > 0).all()
    ok = filled.query(task="charlm").collect()
    for row in hv.iter_rows(named=True):
        pts = ok.filter(pl.col("device_name") == row["device_name"]).select("val_loss", "latency_ms").to_numpy()
        assert row["hypervolume"] == pytest.approx(HV(ref_point=np.array([4.0, 10.0]))(pts))
