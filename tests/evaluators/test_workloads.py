"""Named workloads (deploy.workloads): parsing, the modes each one measures, its columns, bad input."""

from __future__ import annotations

import pytest
import torch

from archbench import Architecture
from archbench.constraints import Constraint, is_pretrain, parse_constraints
from archbench.deploy import Deploy
from archbench.errors import ConfigError
from archbench.evaluators import measurement
from archbench.evaluators.measurement import WORKLOAD_METRICS
from archbench.leaderboard.objectives import Objective
from archbench.metrics import at_workload, of_column, split_workload

WORKLOADS = {"chat": {"context": 24}, "batch4": {"batch": 4, "prompt": 16}}


def test_workloads_parse_inherit_and_round_trip() -> None:
    d = Deploy.from_dict({"batch": 2, "exec_mode": "eager", "workloads": WORKLOADS})
    chat, batch4 = d.workload("chat"), d.workload("batch4")
    assert (chat.batch, chat.context, chat.prompt, chat.modes) == (2, 24, None, ("prefill",))  # deploy.*'s batch
    assert (batch4.batch, batch4.prompt, batch4.name, batch4.where) == (4, 16, "batch4", "deploy.workloads.batch4")
    assert Deploy.from_dict(d.to_dict()) == d
    assert "workloads" not in Deploy().to_dict()  # a study from before workloads keeps its identity
    assert d.label() == "prefill b2 p=max eager; chat=prefill b2 p=max eager; batch4=prefill b4 p=16 eager"


def test_metrics_choose_workloads_and_their_modes() -> None:
    d = Deploy.from_dict({"workloads": WORKLOADS})
    needed = ["val_loss", "latency_ms", "decode_ms_per_token@chat", "kv_cache_mb@chat"]
    used = d.used_by(needed).for_metrics(needed)
    assert used.modes == ("prefill",) and [w.name for w in used.workloads] == ["chat"]  # only those named
    assert used.workload("chat").modes == ("prefill", "decode")
    assert used.label() == "prefill b1 p=max eager; chat=prefill+decode b1 p=max c=24 eager"
    both = d.for_metrics(["ttft_ms@batch4", "decode_ms_per_token"])
    assert both.modes == ("prefill", "decode") and both.workload("batch4").modes == ("prefill", "generate")
    assert both.workload("chat").modes == ("prefill",)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"workloads": {"chat": {"ctx": 5}}}, "deploy.workloads.chat: unknown key 'ctx'; allowed: modes, batch,"),
        ({"workloads": {"chat": {"batch": 0}}}, "deploy.workloads.chat.batch=0: must be a positive integer"),
        ({"workloads": {"chat": {"context": "long"}}}, "deploy.workloads.chat.context='long': must be a positive"),
        ({"workloads": {"chat": {"exec_mode": "jit"}}}, "deploy.workloads.chat.exec_mode='jit': must be one of"),
        ({"workloads": {"chat": {"modes": ["beam"]}}}, "deploy.workloads.chat.modes: unknown mode 'beam'"),
        ({"workloads": {"chat": 8192}}, "deploy.workloads.chat: must be a mapping of settings"),
        ({"workloads": {"chat 8k": {}}}, "deploy.workloads: bad name 'chat 8k': letters, digits and underscores"),
        ({"workloads": [1]}, "deploy.workloads: must map names to settings"),
    ],
)
def test_bad_workloads_are_one_line(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        Deploy.from_dict(data)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_an_unknown_workload_names_the_known_ones() -> None:
    d = Deploy.from_dict({"workloads": WORKLOADS})
    with pytest.raises(ConfigError, match=r"no workload 'chat8k' in deploy.workloads; known: chat, batch4"):
        d.used_by(["decode_ms_per_token@chat8k"])
    with pytest.raises(ConfigError, match=r"no workload 'x' in deploy.workloads; known: none"):
        Deploy().for_metrics(["ttft_ms@x"])


def test_a_context_no_window_is_below_is_refused_where_it_matters() -> None:
    d = Deploy.from_dict({"workloads": {"short": {"context": 16}, "long": {"context": 48}, "p": {"prompt": 8}}})
    used = d.for_metrics(["decode_ms_per_token@short", "decode_ms_per_token@long", "latency_ms@p"])
    with pytest.raises(ConfigError, match=r"deploy.workloads.short.context=16: not above any window of the space"):
        used.check_windows(["sliding_window"], [16, 32])
    d.used_by(["decode_ms_per_token@long"]).for_metrics(["decode_ms_per_token@long"]).check_windows(["x"], [16, 32])
    used.check_windows([], [16, 32])  # no windowed pattern in the space: nothing to tell apart
    used.check_windows(["sliding_window"], [4, 32])  # a window below 8 and 16: some candidates differ from dense
    with pytest.raises(ConfigError, match=r"deploy.workloads.p.prompt=8: not above any window"):
        d.used_by(["latency_ms@p"]).check_windows(["block_sparse"], [8])


def test_columns_constraints_and_objectives_carry_the_workload() -> None:
    assert at_workload("ttft_ms", "b32") == "ttft_ms@b32" and split_workload("ttft_ms@b32") == ("ttft_ms", "b32")
    assert of_column("val_acc@b32") is None and of_column("params@b32") is None  # trained / the same everywhere
    assert of_column("decode_ms_per_token@chat").name == "decode_ms_per_token"  # type: ignore[union-attr]
    assert "params" not in WORKLOAD_METRICS and "kv_cache_bytes_per_token" in WORKLOAD_METRICS
    (c,) = parse_constraints("decode_ms_per_token@chat8k<=5")
    assert c == Constraint("decode_ms_per_token@chat8k", "<=", 5) and is_pretrain(c.metric)
    assert parse_constraints({"ttft_ms@b32": 9}) == (Constraint("ttft_ms@b32", "<=", 9),)
    assert Objective.parse("roofline_fraction@b32").sense == "max"
    with pytest.raises(ConfigError, match="bad constraint"):
        parse_constraints("ttft_ms@<=3")


def test_nothing_measured_leaves_each_workload_null_with_the_reason() -> None:
    """(What a measurement fills at each workload: tests/search/test_workloads_search.py, end to end.)"""
    arch = Architecture(depth=1, width=32, heads=2, max_seq_len=32)
    deploy = Deploy.from_dict({"workloads": {"long": {"context": 24}}})
    off = measurement.measure(None, arch, torch.device("cpu"), False, deploy=deploy)
    assert off.metrics["latency_ms@long"] is None and off.null_reasons["latency_ms@long"].startswith("not measured")
    assert {k for k in off.metrics if k.endswith("@long")} == {f"{n}@long" for n in WORKLOAD_METRICS}
