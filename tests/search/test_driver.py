"""The search driver on real Ray: end to end, resume after SIGKILL, a node dying, cache, refusals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from archbench import ConfigError, Leaderboard, SearchSpace
from archbench.leaderboard.objectives import Objective
from archbench.search import STRATEGIES, RayConfig, SearchConfig, run_search

TINY = SearchSpace.from_dict(
    {"name": "tiny", "fields": {"depth": [1, 2], "width": [32, 64], "heads": [2], "residual": ["pre_ln", "rezero"],
                                "max_seq_len": 32, "quant": ["fp32"]}}
)  # fmt: skip
SLEEP_OBJECTIVES = (Objective("val_loss"), Objective("latency_ms"))
ARCHBENCH = str(Path(sys.executable).with_name("archbench"))


def rows(root: Path, **filters: object) -> pl.DataFrame:
    return Leaderboard(root).query(status=None, **filters).collect()  # type: ignore[arg-type]


def sleep_config(tmp: Path, **kw: object) -> SearchConfig:
    base: dict[str, object] = dict(
        space=TINY, strategy="random", objectives=SLEEP_OBJECTIVES, n_trials=6, concurrency=2,
        leaderboard=str(tmp / "lb"), evaluator="sleep", evaluator_options={"seconds": 0.05},
        ray=RayConfig(executor="inline"), progress=False, plot=False,
    )  # fmt: skip
    base.update(kw)
    return SearchConfig(**base)  # type: ignore[arg-type]


@pytest.mark.slow
def test_cli_search_end_to_end_with_real_training(tmp_path: Path) -> None:
    lb = tmp_path / "lb"
    cmd = [ARCHBENCH, "search", "n_trials=3", "concurrency=2", "budget=steps=8", f"leaderboard={lb}",
           "space.fields.depth=[1]", "space.fields.width=[32,64]", "progress=false", "ray.num_cpus=2"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "front of study charlm-lm_tiny-optuna_gp-s0" in result.stdout
    df = rows(lb)
    assert df.height == 3 and set(df["trial"].to_list()) == {0, 1, 2}
    ok = df.filter(pl.col("status") == "ok")
    assert ok.height >= 2
    assert ok["val_loss"].null_count() == 0 and ok["latency_ms"].null_count() == 0
    assert (ok["val_loss"] < 5.55).all()  # already below a uniform byte predictor (ln 256) after 8 steps
    study_dir = tmp_path / "studies" / "charlm-lm_tiny-optuna_gp-s0"
    assert (study_dir / "optuna.journal").exists() and (study_dir / "front.png").exists()
    assert "front plot:" in result.stdout


@pytest.mark.slow
def test_resume_after_sigkill_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    lb = tmp_path / "lb"
    # search=tpe: the journal-storage resume is the point, not the strategy; GP's asks cost seconds each here
    cmd = [ARCHBENCH, "search", "evaluator=sleep", "+evaluator_options.seconds=0.7", "n_trials=14", "concurrency=2",
           "search=tpe", f"leaderboard={lb}", "progress=false", "plot=false", "ray.num_cpus=2"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if Leaderboard(lb).exists() and rows(lb).height >= 4:
            break
    assert proc.poll() is None, "the search ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = rows(lb)
    assert 4 <= before.height < 14
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    after = rows(lb)
    trials = sorted(after["trial"].to_list())
    assert trials == list(range(14)), "a trial was lost or recorded twice"
    kept = after.filter(pl.col("trial").is_in(before["trial"].to_list()))
    assert sorted(kept["created_at"].to_list()) == sorted(before["created_at"].to_list())  # not run again


@pytest.mark.slow
def test_a_node_dying_mid_search_is_retried(tmp_path: Path) -> None:
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()  # a module-level local instance must not stand in for the cluster
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    victim = cluster.add_node(num_cpus=1)
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    config = sleep_config(
        tmp_path, n_trials=8, evaluator_options={"seconds": 1.5}, ray=RayConfig(address=cluster.address)
    )
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(run_search(config)))
    try:
        thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (Leaderboard(tmp_path / "lb").exists()):
            time.sleep(0.2)
        time.sleep(0.5)  # trials are in flight on both nodes now
        cluster.remove_node(victim)
        thread.join(timeout=180)
        assert not thread.is_alive()
    finally:
        cluster.shutdown()
    df = rows(tmp_path / "lb")
    assert sorted(df["trial"].to_list()) == list(range(8))
    assert (df["status"] == "ok").all(), df.select("trial", "status", "error").to_dicts()


@pytest.fixture(scope="module")
def local_ray() -> object:
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize("strategy", STRATEGIES.names())
def test_every_strategy_through_the_ray_driver(strategy: str, tmp_path: Path, local_ray: object) -> None:
    n = 4 if strategy == "optuna_gp" else 10
    outcome = run_search(sleep_config(tmp_path, strategy=strategy, n_trials=n, ray=RayConfig()))
    df = rows(tmp_path / "lb")
    assert sorted(df["trial"].to_list()) == list(range(n))
    assert (df["task"] == "sleep").all() and (df["study"] == outcome.study).all()
    assert outcome.ok == n and outcome.front and outcome.hypervolume > 0
    assert all(TINY.contains(a) for a in _archs(df))


def _archs(df: pl.DataFrame) -> list:
    from archbench import Architecture

    names = Architecture.field_names()
    return [Architecture.from_dict({k: r[k] for k in names}) for r in df.to_dicts()]


def test_rerunning_a_finished_study_runs_nothing_and_more_trials_continue(tmp_path: Path) -> None:
    first = run_search(sleep_config(tmp_path, n_trials=4))
    assert first.trials == 4
    same = run_search(sleep_config(tmp_path, n_trials=4))
    assert same.trials == 4 and rows(tmp_path / "lb").height == 4
    more = run_search(sleep_config(tmp_path, n_trials=7))
    assert more.trials == 7 and sorted(rows(tmp_path / "lb")["trial"].to_list()) == list(range(7))


def test_changed_settings_are_refused_with_the_differences(tmp_path: Path) -> None:
    run_search(sleep_config(tmp_path, n_trials=2, study="s"))
    with pytest.raises(ConfigError) as info:
        run_search(sleep_config(tmp_path, n_trials=2, study="s", seed=5))
    assert "study 's' exists with other settings (seed was 0, now 5)" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_study_whose_state_was_deleted_is_not_mixed_into(tmp_path: Path) -> None:
    import shutil

    first = run_search(sleep_config(tmp_path, n_trials=2, study="gone"))
    shutil.rmtree(first.study_dir)
    with pytest.raises(ConfigError, match="already has rows of study 'gone' but its state"):
        run_search(sleep_config(tmp_path, n_trials=2, study="gone"))
    assert not (first.study_dir / "study.json").exists()


def test_cache_reuses_rows_of_architectures_already_measured(tmp_path: Path) -> None:
    one = SearchSpace.from_dict({"name": "one", "fields": {"depth": 1, "width": 32, "heads": 2, "max_seq_len": 32,
                                                           "residual": ["pre_ln", "rezero"]}})  # fmt: skip
    config = SearchConfig(
        space=one, strategy="random", budget="steps=2", n_trials=4, leaderboard=str(tmp_path / "lb"),
        evaluator_options={"measure": False}, objectives=(Objective("val_loss"), Objective("params")),
        ray=RayConfig(executor="inline"), progress=False, plot=False,
    )  # fmt: skip
    outcome = run_search(config)
    df = rows(tmp_path / "lb").sort("trial")
    assert df.height == 4 and df["arch_id"].n_unique() == 2
    fresh, cached = df.filter(~pl.col("cached")), df.filter(pl.col("cached"))
    assert fresh.height == 2 and cached.height == 2 and outcome.cached == 2
    for row in cached.to_dicts():
        src = fresh.filter(pl.col("arch_id") == row["arch_id"]).to_dicts()[0]
        assert row["val_loss"] == src["val_loss"] and row["study"] == src["study"]


def test_lookup_evaluator_answers_from_a_leaderboard(tmp_path: Path) -> None:
    run_search(sleep_config(tmp_path, n_trials=8, study="table"))
    table = rows(tmp_path / "lb", study="table")
    config = sleep_config(
        tmp_path, evaluator="lookup", task="sleep", budget="none", n_trials=6, study="bench",
        evaluator_options={"table": str(tmp_path / "lb")},
    )  # fmt: skip
    run_search(config)
    bench = rows(tmp_path / "lb", study="bench")
    assert bench.height == 6
    for row in bench.to_dicts():
        measured = table.filter(pl.col("arch_id") == row["arch_id"])
        if measured.height:
            assert row["status"] == "ok" and row["val_loss"] == measured["val_loss"][0]
        else:
            assert row["status"] == "unsupported" and row["error"] == "not in the lookup table"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search=nope"], "Could not find 'search/nope'"),
        (["task=nope"], "Could not find 'task/nope'"),
        (["n_trials=abc"], "n_trials='abc': must be an integer"),
        (["n_trials=0"], "n_trials=0: must be at least 1"),
        (["budget=laps=3"], "a budget is one of steps=N"),
        (["objectives=[val_los:min,latency_ms:min]"], "objective 'val_los' is not a metric (did you mean 'val_loss'?)"),
        (["nope=1"], "Could not override 'nope'"),
        (["ray.adress=auto"], "Could not override 'ray.adress'"),
        (["evaluator=magic"], "unknown trial evaluator 'magic'"),
        (["search.fidelity=halving", "search.calibrate=maybe"], "search.calibrate='maybe': must be true or false"),
    ],
)
def test_bad_overrides_are_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from archbench.cli.main import main

    assert main(["search", *args, f"leaderboard={tmp_path / 'lb'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("archbench: error: ") and message in err, err
    assert err.count("\n") == 1
    assert not (tmp_path / "lb").exists()  # nothing written for a bad command


@pytest.mark.slow
def test_a_bad_override_through_the_installed_command_is_one_line(tmp_path: Path) -> None:
    """The cases above call the CLI in-process; the console script gives the same line and exit code."""
    result = subprocess.run(
        [ARCHBENCH, "search", "n_trials=abc", f"leaderboard={tmp_path / 'lb'}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr == "archbench: error: n_trials='abc': must be an integer\n"
    assert not (tmp_path / "lb").exists()


@pytest.mark.slow
def test_an_accelerator_type_the_cluster_lacks_is_refused(tmp_path: Path, local_ray: object) -> None:
    with pytest.raises(ConfigError, match=r"ray.accelerator_type=H100: no node of this cluster has it"):
        run_search(sleep_config(tmp_path, ray=RayConfig(accelerator_type="H100")))


@pytest.mark.slow
def test_trials_run_only_on_nodes_of_the_accelerator_type(tmp_path: Path) -> None:
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()  # a module-level local instance must not stand in for the cluster
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    typed = cluster.add_node(num_cpus=1, num_gpus=1, resources={"accelerator_type:FAKE9": 1})
    cluster.wait_for_nodes()
    try:
        config = sleep_config(tmp_path, n_trials=4, ray=RayConfig(address=cluster.address, accelerator_type="FAKE9"))
        outcome = run_search(config)
    finally:
        cluster.shutdown()
    assert outcome.ok == 4
    assert typed.node_id  # the typed node existed; the head (no type) could not take a trial
