"""Steering a search: seed architectures, warm starts, accepted changes, the journal in Optuna's hands."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import polars as pl
import pytest

from archbench import ConfigError, Leaderboard
from archbench.search import STRATEGIES, SearchConfig, run_search
from tests.search.test_driver import TINY, rows, sleep_config


@pytest.mark.parametrize("strategy", ["random", "optuna_nsga2", "optuna_tpe", "pymoo_nsga2"])
def test_seed_architectures_are_evaluated_first(strategy: str, tmp_path: Path) -> None:
    seeds = tuple(TINY.sample(3, seed=4))
    outcome = run_search(sleep_config(tmp_path, strategy=strategy, n_trials=6, seed_archs=seeds))
    df = rows(tmp_path / "lb").sort("trial")
    assert df.height == 6
    assert set(df["arch_id"].to_list()[:3]) == {a.arch_id for a in seeds}
    assert json.loads((outcome.study_dir / "seeded.json").read_text())["seed_archs"] == [a.arch_id for a in seeds]


def test_seed_architectures_outside_the_space_are_refused(tmp_path: Path) -> None:
    outside = TINY.sample(1, seed=0)[0].replace(width=96)
    with pytest.raises(ConfigError, match="is not in space tiny"):
        sleep_config(tmp_path, seed_archs=(outside,))


@pytest.mark.parametrize("strategy", ["optuna_nsga2", "pymoo_nsga2", "random"])
def test_warm_start_tells_the_matching_rows_and_reruns_none(strategy: str, tmp_path: Path) -> None:
    run_search(sleep_config(tmp_path, n_trials=6, study="earlier"))
    prior = rows(tmp_path / "lb", study="earlier")
    outcome = run_search(sleep_config(tmp_path, strategy=strategy, n_trials=4, study="later", warm_start=True, seed=9))
    record = json.loads((outcome.study_dir / "seeded.json").read_text())
    assert sorted(record["warm_started_from"]) == sorted(set(prior["arch_id"].to_list()))
    later = rows(tmp_path / "lb", study="later")
    assert later.height == 4 and later["trial"].n_unique() == 4  # 4 new trials; the warm rows were not re-run
    if strategy.startswith("optuna"):
        study = optuna.load_study(
            study_name="later",
            storage=optuna.storages.JournalStorage(
                optuna.storages.journal.JournalFileBackend(str(outcome.study_dir / "optuna.journal"))
            ),
        )
        warm = [t for t in study.trials if t.user_attrs.get("archbench_warm_start")]
        assert sorted(t.user_attrs["arch_id"] for t in warm) == sorted(record["warm_started_from"])
    # Rerunning does not warm-start twice.
    run_search(sleep_config(tmp_path, strategy=strategy, n_trials=5, study="later", warm_start=True, seed=9))
    assert json.loads((outcome.study_dir / "seeded.json").read_text()) == record


def test_changes_are_refused_then_accepted_and_recorded(tmp_path: Path) -> None:
    from archbench.leaderboard.objectives import Objective

    run_search(sleep_config(tmp_path, n_trials=2, study="s"))
    changed = (Objective("val_loss"), Objective("params"))
    with pytest.raises(ConfigError) as info:
        run_search(sleep_config(tmp_path, n_trials=3, study="s", objectives=changed))
    msg = str(info.value)
    assert "objectives was" in msg and "study.allow_changes=true" in msg and "\n" not in msg
    run_search(sleep_config(tmp_path, n_trials=3, study="s", objectives=changed, allow_changes=True))
    saved = json.loads((tmp_path / "studies" / "s" / "study.json").read_text())
    assert saved["objectives"] == ["val_loss:min", "params:min"]
    assert len(saved["changes"]) == 1 and "objectives was" in saved["changes"][0]["changed"][0]
    assert rows(tmp_path / "lb", study="s").height == 3


def test_the_journal_opens_in_optunas_own_storage(tmp_path: Path) -> None:
    """What optuna-dashboard reads: every trial with its values, in Optuna's own format."""
    outcome = run_search(sleep_config(tmp_path, strategy="optuna_nsga2", n_trials=5, study="dash"))
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(outcome.study_dir / "optuna.journal"))
    )
    study = optuna.load_study(study_name="dash", storage=storage)
    df = rows(tmp_path / "lb", study="dash")
    assert len(study.trials) == 5
    for trial in study.trials:
        row = df.filter(pl.col("trial") == trial.number).to_dicts()[0]
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert trial.values == [row["val_loss"], row["latency_ms"]]
        assert trial.user_attrs["arch_id"] == row["arch_id"]


def test_cli_study_shorthand_and_allow_changes(tmp_path: Path) -> None:
    from archbench.cli.main import main

    base = ["search", "evaluator=sleep", "+evaluator_options.seconds=0.01", f"leaderboard={tmp_path / 'lb'}",
            "progress=false", "plot=false", "ray.executor=inline", "study=cli"]  # fmt: skip
    assert main([*base, "n_trials=2"]) == 0
    assert main([*base, "n_trials=3", "seed=1"]) == 2
    assert main([*base, "n_trials=3", "seed=1", "study.allow_changes=true"]) == 0
    assert Leaderboard(tmp_path / "lb").query(study="cli").collect().height == 3


def test_every_strategy_implements_enqueue() -> None:
    for name in STRATEGIES.names():
        assert "enqueue" in vars(STRATEGIES.get(name)) or any(
            "enqueue" in vars(base) for base in STRATEGIES.get(name).__mro__[1:-1] if base.__name__ != "Strategy"
        ), name


def test_search_config_defaults_are_plain() -> None:
    config = SearchConfig(space=TINY)
    assert config.seed_archs == () and config.warm_start is False and config.allow_changes is False


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["optuna_nsga2", "pymoo_nsga2", "optuna_tpe"])
def test_constraints_are_checked_before_training_and_strategies_learn(strategy: str, tmp_path: Path) -> None:
    """params<=B excludes about half of the space: no infeasible candidate is trained, every infeasible
    row names the constraint, and the second half of the study proposes fewer infeasible candidates."""
    from archbench import SearchSpace
    from archbench.constraints import parse_constraints
    from archbench.leaderboard.objectives import Objective
    from archbench.search import RayConfig

    space = SearchSpace.from_dict(
        {"name": "half", "fields": {"depth": [1, 2, 3, 4], "width": [32, 64, 96, 128], "heads": 2, "max_seq_len": 16,
                                    "residual": ["pre_ln", "rezero"], "ffn_ratio": [1.0, 2.0]}}
    )  # fmt: skip
    params = sorted(_params(a) for a in space.sample(space.size().valid, seed=0))
    bound = params[len(params) // 2]
    config = SearchConfig(
        space=space, strategy=strategy, strategy_options={"population_size": 8} if "nsga" in strategy else {},
        budget="steps=1", n_trials=24, seed=1, leaderboard=str(tmp_path / "lb"), evaluator_options={"measure": False},
        objectives=(Objective("val_loss"), Objective("depth")), constraints=parse_constraints(f"params<={bound}"),
        ray=RayConfig(executor="inline"), progress=False, plot=False, cache=False,
    )  # fmt: skip
    outcome = run_search(config)
    df = rows(tmp_path / "lb").sort("trial")
    assert df.height == 24
    bad = df.filter(pl.col("status") == "infeasible")
    assert bad.height > 0 and (bad["feasible"] == False).all()  # noqa: E712
    assert bad["train_time_s"].null_count() == bad.height  # never trained
    assert all(e.startswith("params=") and f"> {bound}" in e for e in bad["error"].to_list())
    good = df.filter(pl.col("status") == "ok")
    assert (good["feasible"]).all() and (good["params"] <= bound).all()
    first, second = df["status"].to_list()[:12], df["status"].to_list()[12:]
    assert second.count("infeasible") < first.count("infeasible")
    assert outcome.front and {r["arch_id"] for r in outcome.front} <= set(good["arch_id"].to_list())


def _params(arch: object) -> int:
    import torch

    from archbench import build
    from archbench.search_space.model import count_params

    with torch.device("meta"):
        return count_params(build(arch))


def test_cli_constraints_are_parsed_and_judged_on_every_row(tmp_path: Path) -> None:
    from archbench.cli.main import main

    code = main(["search", "evaluator=sleep", "+evaluator_options.seconds=0.01", f"leaderboard={tmp_path / 'lb'}",
                 "progress=false", "plot=false", "ray.executor=inline", "n_trials=4", "study=c",
                 "constraints=[params<=1,latency_ms<=100]"])  # fmt: skip
    assert code == 0
    df = rows(tmp_path / "lb", study="c")
    assert df.height == 4 and (df["feasible"] == False).all() and (df["violation"] > 0).all()  # noqa: E712
    assert main(["search", "evaluator=sleep", f"leaderboard={tmp_path / 'lb'}", "study=d",
                 "constraints=[params<<1]"]) == 2  # fmt: skip
