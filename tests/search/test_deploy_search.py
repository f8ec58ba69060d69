"""Searching on deployment metrics: decode latency as an objective, the deployment in the study and the cache."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from archbench import Leaderboard, SearchSpace
from archbench.constraints import parse_constraints
from archbench.deploy import Deploy
from archbench.leaderboard.objectives import Objective
from archbench.search import RayConfig, SearchConfig, run_search
from archbench.search.trial_evaluators import make_evaluator

TWO = SearchSpace.from_dict({"name": "two", "fields": {"depth": 1, "width": 32, "heads": 2, "max_seq_len": 32,
                                                       "attention": ["dense", "linear"]}})  # fmt: skip
DECODE = (Objective("val_loss"), Objective("decode_ms_per_token"))


def config(tmp: Path, objectives: tuple[Objective, ...], **kw: object) -> SearchConfig:
    base: dict[str, object] = dict(
        space=TWO, strategy="random", budget="steps=2", n_trials=2, leaderboard=str(tmp / "lb"),
        objectives=objectives, ray=RayConfig(executor="inline"), progress=False, plot=False,
    )  # fmt: skip
    base.update(kw)
    return SearchConfig(**base)  # type: ignore[arg-type]


def test_the_objectives_choose_the_modes_measured(tmp_path: Path) -> None:
    plain = config(tmp_path, (Objective("val_loss"), Objective("latency_ms")))
    assert plain.measured_deploy == Deploy() and "deploy" not in plain.identity()  # old studies resume
    decode = config(tmp_path, DECODE)
    assert decode.measured_deploy.modes == ("prefill", "decode")
    assert decode.identity()["deploy"]["modes"] == ["prefill", "decode"]
    assert make_evaluator(decode).deploy == decode.measured_deploy
    generate = config(
        tmp_path, (Objective("val_loss"),), constraints=parse_constraints("ttft_ms<=100"), deploy=Deploy(new_tokens=8)
    )
    assert generate.measured_deploy.modes == ("prefill", "generate")


@pytest.mark.slow
def test_decode_latency_as_an_objective_end_to_end(tmp_path: Path) -> None:
    outcome = run_search(config(tmp_path, DECODE, n_trials=2, study="dec"))
    df = Leaderboard(tmp_path / "lb").query(status=None).collect()
    assert df.height == 2 and (df["status"] == "ok").all()
    assert df["decode_ms_per_token"].null_count() == 0 and (df["decode_ms_per_token"] > 0).all()
    assert df["kv_cache_mb"].null_count() == 0
    assert set(df["deploy"]) == {"prefill+decode b1 p=max c=max/2 eager"}
    assert all("decode_ms_per_token" in row for row in outcome.front)
    study = json.loads((tmp_path / "studies" / "dec" / "study.json").read_text())
    assert study["deploy"]["modes"] == ["prefill", "decode"]
    # A study measuring another deployment does not reuse these rows from the cache; the same one does.
    other = run_search(config(tmp_path, (Objective("val_loss"), Objective("latency_ms")), study="prefill-only"))
    assert other.cached == 0
    again = run_search(config(tmp_path, DECODE, study="dec-again"))
    assert again.cached == 2
    rows = Leaderboard(tmp_path / "lb").query(study="dec-again", status=None).collect()
    assert rows.filter(pl.col("cached"))["decode_ms_per_token"].null_count() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deploy.exec_mode=jit"], "deploy.exec_mode='jit': must be one of eager, compile"),
        (["deploy.modes=[beam]"], "deploy.modes: unknown mode 'beam'"),
        (["objectives=[val_loss:min,decode_ms_per_tokn:min]"], "did you mean 'decode_ms_per_token'?"),
        (["objectives=[val_loss:min,ttft_ms:min]", "deploy.context=48"], "exceeds max_seq_len=64 of the space"),
    ],
)
def test_bad_deploy_overrides_are_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from archbench.cli.main import main

    assert main(["search", *args, f"leaderboard={tmp_path / 'lb'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("archbench: error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "lb").exists()


def test_a_deployment_longer_than_the_space_is_refused(tmp_path: Path) -> None:
    from archbench import ConfigError

    ttft = (Objective("val_loss"), Objective("ttft_ms"))
    with pytest.raises(ConfigError, match=r"deploy.context=16 \+ deploy.new_tokens=32 exceeds max_seq_len=32"):
        config(tmp_path, ttft)
    assert config(tmp_path, ttft, deploy=Deploy(new_tokens=8)).measured_deploy.modes == ("prefill", "generate")
    with pytest.raises(ConfigError, match=r"deploy\.context=32: must be below max_seq_len=32"):
        config(tmp_path, DECODE, deploy=Deploy(context=32))
    with pytest.raises(ConfigError, match=r"deploy\.prompt=40 exceeds max_seq_len=32"):
        config(tmp_path, DECODE, deploy=Deploy(prompt=40))
