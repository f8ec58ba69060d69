"""The search's cache keys on the whole run: a row trained with another recipe, or one whose recipe was
never recorded, is trained again, on a real leaderboard with real rows."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from archbench import Leaderboard, SearchSpace
from archbench.leaderboard.objectives import Objective
from archbench.search import RayConfig, SearchConfig, run_search
from archbench.train_config import TrainConfig

ONE = SearchSpace.from_dict({"name": "one", "fields": {"depth": 1, "width": 32, "heads": 2, "max_seq_len": 32,
                                                       "residual": ["pre_ln", "rezero"]}})  # fmt: skip
BOTH = tuple(ONE.sample(2, seed=0))  # the space's two architectures, evaluated first


def config(tmp: Path, study: str, lr: float, leaderboard: str = "lb") -> SearchConfig:
    """Two trials of the cheap path: real training (two steps), no latency measurement."""
    return SearchConfig(
        space=ONE, strategy="random", budget="steps=2", n_trials=2, seed_archs=BOTH, study=study,
        leaderboard=str(tmp / leaderboard), evaluator_options={"measure": False}, train=TrainConfig(lr=lr),
        objectives=(Objective("val_loss"), Objective("params")), ray=RayConfig(executor="inline"),
        progress=False, plot=False,
    )  # fmt: skip


def rows(root: Path, study: str) -> pl.DataFrame:
    return Leaderboard(root).query(study=study, status=None).collect().sort("arch_id")


@pytest.mark.slow
def test_a_row_trained_at_another_learning_rate_is_not_served_from_the_cache(tmp_path: Path) -> None:
    assert run_search(config(tmp_path, "a", lr=3e-3)).cached == 0
    assert run_search(config(tmp_path, "b", lr=1e-2)).cached == 0  # another lr: trained again
    assert run_search(config(tmp_path, "c", lr=1e-2)).cached == 2  # the same lr: served
    a, b, c = (rows(tmp_path / "lb", s) for s in "abc")
    assert [json.loads(r)["lr"] for r in a["train_recipe"]] == [3e-3, 3e-3]
    assert [json.loads(r)["lr"] for r in b["train_recipe"]] == [1e-2, 1e-2]
    assert (a["val_loss"] != b["val_loss"]).all()  # each trained with its own lr
    assert c["cached"].all() and c["val_loss"].to_list() == b["val_loss"].to_list()


@pytest.mark.slow
def test_rows_from_before_the_recipe_was_recorded_read_as_cosine_and_are_never_served(tmp_path: Path) -> None:
    """Rows as archbench 0.3.1 wrote them (schema 3, no train_recipe, no train_schedule: recorded before
    schedules existed) read back with the schedule they had, cosine, and are trained again."""
    run_search(config(tmp_path, "new", lr=3e-3))
    parts = sorted((tmp_path / "lb" / "parts").glob("*.parquet"))
    legacy = tmp_path / "old" / "parts"
    legacy.mkdir(parents=True)
    for part in parts:
        table = pq.read_table(part)
        table = table.drop_columns(["train_recipe", "train_schedule"]).replace_schema_metadata(
            {b"archbench.schema_version": b"3"}
        )
        pq.write_table(table, legacy / part.name.replace(".parquet", "-old.parquet"))
    old = Leaderboard(tmp_path / "old").query(status=None).collect()
    assert old.height == 2 and old["train_schedule"].to_list() == ["cosine"] * 2 and old["train_recipe"].is_null().all()
    again = run_search(config(tmp_path, "again", lr=3e-3, leaderboard="old"))
    assert again.cached == 0 and rows(tmp_path / "old", "again")["train_recipe"].is_not_null().all()
