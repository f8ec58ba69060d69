"""Searching at named workloads: the CLI end to end, the study's identity, and bad input (one line, exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from archbench import Architecture, Leaderboard, SearchSpace
from archbench.deploy import Deploy
from archbench.errors import ConfigError
from archbench.leaderboard.objectives import Objective
from archbench.search import RayConfig, SearchConfig
from archbench.search.cache import cache_key
from archbench.search_space.cache_size import kv_cache_bytes

WORKLOADS = "deploy.workloads={chat: {batch: 1, context: 48}, batch4: {batch: 4, prompt: 32}}"
FIELDS = {"depth": 1, "width": 32, "heads": 2, "max_seq_len": 64, "attention": ["dense", "sliding_window"],
          "window": [16, 32]}  # fmt: skip
SPACE = SearchSpace.from_dict({"name": "w", "fields": FIELDS})


def config(tmp: Path, objectives: tuple[str, ...], deploy: Deploy, **kw: object) -> SearchConfig:
    return SearchConfig(
        space=SPACE, strategy="random", budget="steps=2", n_trials=2, leaderboard=str(tmp / "lb"), deploy=deploy,
        objectives=tuple(Objective.parse(o) for o in objectives), ray=RayConfig(executor="inline"), progress=False,
        plot=False, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_only_named_workloads_are_in_the_study_and_its_identity(tmp_path: Path) -> None:
    deploy = Deploy.from_dict({"workloads": {"chat": {"context": 48}, "batch4": {"batch": 4}}})
    plain = config(tmp_path, ("val_loss", "latency_ms"), deploy)
    assert plain.measured_deploy == Deploy() and "deploy" not in plain.identity()  # no workload named: as before
    chat = config(tmp_path, ("val_loss", "decode_ms_per_token@chat"), deploy)
    assert [w.name for w in chat.measured_deploy.workloads] == ["chat"]
    assert chat.identity()["deploy"]["workloads"] == {
        "chat": {**Deploy(context=48).to_dict(), "modes": ["prefill", "decode"]}
    }
    from archbench.search.trial_evaluators import make_evaluator

    assert make_evaluator(chat).run_settings().deploy == chat.measured_deploy  # the cache keys on its label
    longer = config(tmp_path, ("val_loss", "decode_ms_per_token@chat"), Deploy.from_dict({"workloads": {
        "chat": {"context": 40}}}))  # fmt: skip
    keys = [cache_key("charlm", "steps=2", "a", {}, make_evaluator(c).run_settings().columns(), {}) for c in
            (plain, chat, longer)]  # fmt: skip
    assert len(set(keys)) == 3  # a row measured at another workload is never served from the cache


@pytest.mark.parametrize(
    ("objectives", "deploy", "message"),
    [
        (
            ("val_loss", "ttft_ms@chat9k"),
            {"chat": {}},
            "objective 'ttft_ms@chat9k': no workload 'chat9k' in deploy.workloads; known: chat",
        ),
        (("val_loss", "params@chat"), {"chat": {}}, "objective 'params@chat': params is not measured per workload"),
        (
            ("val_loss", "decode_ms_per_token@chat"),
            {"chat": {"context": 16}},
            "deploy.workloads.chat.context=16: not above any window of the space (16, 32 for sliding_window)",
        ),
        (
            ("val_loss", "decode_ms_per_token@chat"),
            {"chat": {"context": 64}},
            "deploy.workloads.chat.context=64: must be below max_seq_len=64 of the space",
        ),
    ],
)
def test_bad_workload_settings_are_refused(
    tmp_path: Path, objectives: tuple[str, ...], deploy: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        config(tmp_path, objectives, Deploy.from_dict({"workloads": deploy}))
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["objectives=[val_loss:min,decode_ms_per_token@chat8k:min]"],
            "no workload 'chat8k' in deploy.workloads; known: chat, batch4",
        ),
        (["constraints=[ttft_ms@batch5<=3]"], "constraint 'ttft_ms@batch5': no workload 'batch5'"),
        (["deploy.workloads={chat: {ctx: 5}}"], "deploy.workloads.chat: unknown key 'ctx'"),
    ],
)
def test_bad_workloads_on_the_command_line_are_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from archbench.cli.main import main

    overrides = [WORKLOADS, *args] if not args[0].startswith("deploy.workloads") else args
    assert main(["search", *overrides, f"leaderboard={tmp_path / 'lb'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("archbench: error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "lb").exists()


@pytest.mark.slow
def test_a_search_at_two_named_workloads_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """archbench search with an objective at one workload and a constraint at the other: each row carries both
    workloads' columns, the front plot and `leaderboard pareto` show them."""
    from archbench.cli.main import main

    lb = tmp_path / "lb"
    space = tmp_path / "tiny.yaml"  # lm_tiny's shape, without the windowed patterns (compiling their flex costs
    space.write_text(yaml.safe_dump({"name": "tiny", "fields": {**FIELDS, "attention": ["dense", "linear"]}}))  # ~20 s)
    args = [
        "search", f"space={space}", "objectives=[val_loss:min,decode_ms_per_token@chat:min]", WORKLOADS,
        "constraints=[latency_ms@batch4<=1e6]", "n_trials=1", "budget=steps=2", "ray.executor=inline", "study.name=w",
        "progress=false", f"leaderboard={lb}", "search=random",
    ]  # fmt: skip
    assert main(args) == 0
    df = Leaderboard(lb).query(status=None).collect()
    assert df.height == 1 and (df["status"] == "ok").all(), df["error"].to_list()
    for column in ("decode_ms_per_token@chat", "kv_cache_bytes_per_token@chat", "latency_ms@batch4",
                   "kv_cache_bytes_per_token"):  # fmt: skip
        assert df[column].null_count() == 0 and (df[column] > 0).all(), column
    assert "decode_ms_per_token@batch4" in df.columns and df["decode_ms_per_token@batch4"].null_count() == 1
    row = df.row(0, named=True)
    reasons = json.loads(row["null_reasons"])
    assert "deploy.workloads.batch4.modes has no decode" in reasons["decode_ms_per_token@batch4"]
    arch = Architecture.from_dict({f: row[f] for f in Architecture.field_names()})
    assert row["kv_cache_bytes_per_token"] == kv_cache_bytes(arch, 32) / 32  # at max_seq_len / 2
    assert row["kv_cache_bytes_per_token@chat"] == kv_cache_bytes(arch, 48) / 48
    assert row["kv_cache_mb@chat"] == pytest.approx(kv_cache_bytes(arch, 48) / 2**20)  # the real cache, measured
    assert row["params"] > 0 and "params@chat" not in df.columns  # the same at every workload
    label = "; chat=prefill+decode b1 p=max c=48 eager; batch4=prefill b4 p=32 eager"
    assert df["deploy"].str.contains(label, literal=True).all()
    study = tmp_path / "studies" / "w"
    assert (study / "front.png").stat().st_size > 0
    assert json.loads((study / "study.json").read_text())["deploy"]["workloads"]["chat"]["context"] == 48
    capsys.readouterr()
    root = ["--root", str(lb)]
    assert main(["leaderboard", "pareto", *root, "--objectives", "val_loss,decode_ms_per_token@chat"]) == 0
    assert "decode_ms_per_token@chat" in capsys.readouterr().out
    html = tmp_path / "front.html"
    plot = ["--objectives", "val_loss,decode_ms_per_token@chat", "--out", str(html)]
    assert main(["leaderboard", "plot", *root, *plot]) == 0
    assert "decode_ms_per_token@chat" in html.read_text()
