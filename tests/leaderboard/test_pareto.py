"""Fronts and ranks against brute-force references, on random data with ties, duplicates and nulls."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from archbench.errors import ConfigError
from archbench.leaderboard import Objective, parse_objectives
from archbench.leaderboard.pareto import annotate, nondominated, pareto_ranks


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def brute_front(points: np.ndarray) -> np.ndarray:
    """O(n²): a point is on the front when no other point dominates it (minimisation)."""
    n = len(points)
    return np.array([not any(dominates(points[j], points[i]) for j in range(n) if j != i) for i in range(n)])


def brute_ranks(points: np.ndarray) -> np.ndarray:
    """Peel fronts one at a time."""
    ranks = np.full(len(points), -1)
    left = np.arange(len(points))
    r = 0
    while len(left):
        mask = brute_front(points[left])
        ranks[left[mask]] = r
        left = left[~mask]
        r += 1
    return ranks


def random_points(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    # Small integer range: many ties in single objectives; then exact duplicates of some rows.
    pts = rng.integers(0, 6, size=(n, m)).astype(float)
    dup = rng.choice(n, size=n // 5, replace=False)
    pts[dup] = pts[rng.choice(n, size=len(dup))]
    return pts


SENSES = {1: ["max"], 2: ["min", "max"], 3: ["min", "max", "min"], 4: ["max", "min", "max", "min"]}


@pytest.mark.parametrize("m", [1, 2, 3, 4])  # 1: moocore ranks a lone objective back to front
@pytest.mark.parametrize("seed", range(6))
def test_front_and_ranks_match_brute_force(m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 90))
    pts = random_points(rng, n, m)
    senses = SENSES[m] if seed % 2 else ["min"] * m
    maximise = [s == "max" for s in senses]
    as_min = pts * np.where(maximise, -1.0, 1.0)
    expected = brute_front(as_min)
    assert np.array_equal(nondominated(pts, maximise), expected)
    ranks = pareto_ranks(pts, maximise)
    assert np.array_equal(ranks, brute_ranks(as_min))
    assert np.array_equal(ranks == 0, expected)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_annotate_groups_by_task_budget_and_device_and_skips_nulls(m: int) -> None:
    rng = np.random.default_rng(100 + m)
    n = 300
    pts = random_points(rng, n, m)
    names = [f"o{i}" for i in range(m)]
    data = {name: pts[:, i] for i, name in enumerate(names)}
    df = pl.DataFrame(
        {
            "task": rng.choice(["a", "b"], n),
            "budget": rng.choice(["steps=40", "steps=360"], n),
            "device_name": rng.choice(["gpu0", "gpu1", "cpu"], n),
            **data,
        }
    )
    nulls = rng.choice(n, size=30, replace=False)
    df = df.with_row_index("i").with_columns(
        pl.when(pl.col("i").is_in(nulls[:15].tolist())).then(None).otherwise(pl.col("o0")).alias("o0"),
        pl.when(pl.col("i").is_in(nulls[15:].tolist())).then(float("nan")).otherwise(pl.col("o1")).alias("o1"),
    )
    objs = [Objective(name, sense) for name, sense in zip(names, SENSES[m], strict=True)]
    maximise = np.array([o.maximise for o in objs])
    for mix in (False, True):
        out = annotate(df, objs, mix_hardware=mix, rank=True)
        assert out.height == n
        keys = ["task", "budget"] if mix else ["task", "budget", "device_name"]
        missing = out.filter(pl.col("o0").is_null() | pl.col("o1").is_nan())
        assert missing.height == 30
        assert missing["pareto_front"].null_count() == 30 and missing["pareto_rank"].null_count() == 30
        for _, group in out.filter(pl.col("pareto_rank").is_not_null()).group_by(keys):
            g = group.select(names).to_numpy() * np.where(maximise, -1.0, 1.0)
            assert np.array_equal(group["pareto_front"].to_numpy(), brute_front(g))
            assert np.array_equal(group["pareto_rank"].to_numpy(), brute_ranks(g))
        # Front-only (no rank) agrees with rank 0.
        fast = annotate(df, objs, mix_hardware=mix, rank=False)
        assert fast["pareto_front"].to_list() == out["pareto_front"].to_list()


def test_mixing_hardware_changes_the_front() -> None:
    df = pl.DataFrame(
        {
            "task": ["t"] * 3,
            "budget": ["steps=100"] * 3,
            "device_name": ["fast", "slow", "slow"],
            "loss": [1.0, 2.0, 3.0],
            "ms": [1.0, 5.0, 4.0],
        }
    )
    objs = [Objective("loss"), Objective("ms")]
    per_device = annotate(df, objs)["pareto_front"].to_list()
    mixed = annotate(df, objs, mix_hardware=True)["pareto_front"].to_list()
    assert per_device == [True, True, True]
    assert mixed == [True, False, False]


def test_objective_parsing() -> None:
    assert parse_objectives("val_loss:min, val_acc") == [Objective("val_loss", "min"), Objective("val_acc", "max")]
    assert parse_objectives(["latency_ms", ("energy_mj", "max")])[1] == Objective("energy_mj", "max")
    with pytest.raises(ConfigError, match="min or max"):
        parse_objectives("val_loss:lowest")
    with pytest.raises(ConfigError, match="twice"):
        parse_objectives("val_loss,val_loss:max")
    with pytest.raises(ConfigError, match="at least 2"):
        parse_objectives("val_loss", minimum=2)


def test_lb_pareto_front_and_all_rows(filled) -> None:
    front = filled.pareto("val_loss:min,latency_ms:min", task="charlm")
    ranked = filled.pareto(["val_loss", "latency_ms"], task="charlm", all_rows=True)
    ok = filled.query(task="charlm").collect()
    assert ranked.height == ok.height  # every ok row, ranked or null
    assert set(front["pareto_rank"].to_list()) == {0}
    on_front = ranked.filter(pl.col("pareto_rank") == 0)
    assert sorted(front["trial"].to_list()) == sorted(on_front["trial"].to_list())
    assert front["device_name"].n_unique() == 3  # one front per device
    # No front row is dominated by another row of its own device.
    for row in front.iter_rows(named=True):
        same = ok.filter((pl.col("device_name") == row["device_name"]) & (pl.col("study") != ""))
        better = same.filter(
            (pl.col("val_loss") <= row["val_loss"])
            & (pl.col("latency_ms") <= row["latency_ms"])
            & ((pl.col("val_loss") < row["val_loss"]) | (pl.col("latency_ms") < row["latency_ms"]))
        )
        assert better.height == 0
    # Rows with status other than ok are not candidates unless asked for.
    assert set(filled.pareto(["val_loss", "latency_ms"], status="all")["status"].to_list()) <= {"ok", "infeasible"}
    with pytest.raises(ConfigError, match="did you mean 'val_loss'"):
        filled.pareto(["val_los", "latency_ms"])
    with pytest.raises(ConfigError, match="not numeric"):
        filled.pareto(["val_loss", "device_name"])


def test_front_rows_are_whole_rows_even_without_a_device_name(lb) -> None:
    base = {"task": "t", "status": "ok", "arch_id": "a"}
    lb.append(
        [
            {**base, "trial": 0, "val_loss": 1.0, "latency_ms": 2.0, "depth": 6},  # no device_name
            {**base, "trial": 1, "val_loss": 1.0, "latency_ms": 3.0, "depth": 2},  # same loss, dominated
            {**base, "trial": 2, "val_loss": 0.5, "latency_ms": 9.0, "depth": 8},
            {**base, "trial": 3, "val_loss": 0.5, "latency_ms": 9.0, "depth": 8},  # duplicate of a front point
            {**base, "trial": 4, "val_loss": 0.1, "latency_ms": None},  # not comparable
        ]
    )
    front = lb.pareto(["val_loss", "latency_ms"])
    assert sorted(front["trial"].to_list()) == [0, 2, 3]
    assert front.filter(pl.col("trial") == 0)["depth"].item() == 6 and front["device_name"].null_count() == 3
