"""``evaluator=cost``: a cost-only search (the untrained model measured, nothing trained), refused in one
line when the study needs quality, and ``space=lm_hybrid`` run end to end on a tiny override."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archbench import Leaderboard
from archbench.metrics import TRAINED_ONLY

WORKLOADS = "deploy.workloads={chat: {batch: 1, context: 48}, batch4: {batch: 4, prompt: 32}}"
TINY = [  # lm_hybrid's layouts at a width, depth and length that cost milliseconds (linear: sliding_window
    "space=lm_hybrid", "space.fields.depth=[2]", "space.fields.width=[32]", "space.fields.heads=[2]",  # compiles
    "space.fields.kv_heads=[1]", "space.fields.max_seq_len=64", "space.fields.global_every=[0,1,2]",  # flex: ~20 s)
    "space.fields.attention=[linear]", "space.fields.quant=[fp32]",
]  # fmt: skip


@pytest.mark.parametrize("objective", ["val_loss", "val_bpb_quant", "train_time_s"])
def test_a_cost_search_ranking_on_quality_is_refused_in_one_line(
    objective: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from archbench.cli.main import main

    args = ["search", "evaluator=cost", f"objectives=[{objective}:min,latency_ms:min]", f"leaderboard={tmp_path}/lb"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"evaluator=cost trains nothing, so it cannot report {objective}" in err and err.count("\n") == 1, err
    assert objective in TRAINED_ONLY and not (tmp_path / "lb").exists()


@pytest.mark.slow
def test_a_cost_search_over_lm_hybrid_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every row measured at both workloads (a study measures those it ranks or judges on), nothing trained (no
    recipe, budget none, quality null with the reason); the front plot and `leaderboard pareto` show them."""
    from archbench.cli.main import main

    lb = tmp_path / "lb"
    objectives = "kv_cache_bytes_per_token@chat:min,decode_ms_per_token@chat:min"
    args = [
        "search", *TINY, "evaluator=cost", f"objectives=[{objectives}]", WORKLOADS, "n_trials=2", "search=random",
        "constraints=[latency_ms@batch4<=1e6]", "+evaluator_options.screen=true",  # quick: timing is not the point
        "ray.executor=inline", "study.name=c", "progress=false", f"leaderboard={lb}",
    ]  # fmt: skip
    assert main(args) == 0
    df = Leaderboard(lb).query(status=None).collect()
    assert df.height == 2 and (df["status"] == "ok").all(), df["error"].to_list()
    assert (df["budget"] == "none").all() and df["train_recipe"].null_count() == 2 and (df["task"] == "charlm").all()
    for column in ("decode_ms_per_token@chat", "kv_cache_bytes_per_token@chat", "latency_ms@batch4", "flops"):
        assert df[column].null_count() == 0 and (df[column] > 0).all(), column
    assert df["val_loss"].null_count() == 2 and df["feasible"].all()
    assert "not trained" in json.loads(df["null_reasons"][0])["val_loss"]
    assert (tmp_path / "studies" / "c" / "front.png").stat().st_size > 0
    capsys.readouterr()
    assert main(["leaderboard", "pareto", "--root", str(lb), "--objectives", objectives.replace(":min", "")]) == 0
    assert "decode_ms_per_token@chat" in capsys.readouterr().out
