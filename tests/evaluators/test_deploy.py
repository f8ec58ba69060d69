"""The deployment a study measures in: modes from the objectives, decode metrics on the trial's row."""

from __future__ import annotations

import pytest

from archbench import Architecture
from archbench.deploy import Deploy
from archbench.errors import ConfigError
from archbench.evaluators import TrainConfig, evaluate
from archbench.evaluators.measurement import COST_METRICS

TINY = Architecture(depth=1, width=32, heads=2, max_seq_len=32)


def test_deploy_values_and_labels() -> None:
    d = Deploy()
    assert d.modes == ("prefill",) and d.label() == "prefill b1 p=max eager"
    d = d.for_metrics(["val_loss", "decode_ms_per_token"])
    assert d.modes == ("prefill", "decode") and d.label() == "prefill+decode b1 p=max c=max/2 eager"
    d = Deploy.from_dict({"modes": ["generate"], "batch": 2, "context": 16, "new_tokens": 4, "exec_mode": "compile"})
    assert d.modes == ("prefill", "generate") and d.label() == "prefill+generate b2 p=max n=4 compile"
    assert Deploy.from_dict(d.to_dict()) == d
    assert Deploy().for_metrics(["kv_cache_mb", "ttft_ms"]).modes == ("prefill", "decode", "generate")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"modes": ["beam"]}, "unknown mode 'beam'; allowed: prefill, decode, generate"),
        ({"exec_mode": "jit"}, "deploy.exec_mode='jit': must be one of eager, compile"),
        ({"batch": 0}, "deploy.batch=0: must be a positive integer"),
        ({"new_tokens": 1}, "at least 2"),
        ({"contxt": 5}, "unknown key 'contxt'"),
    ],
)
def test_bad_deploy_settings_are_one_line(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Deploy.from_dict(data)


@pytest.mark.slow
def test_prefill_only_leaves_decode_metrics_null_with_the_reason() -> None:
    r = evaluate(TINY, "charlm", "steps=2", config=TrainConfig(batch_size=8))
    assert r.status == "ok", r.reason
    assert r.metrics["prefill_ms"] == r.metrics["latency_ms"] > 0
    assert r.metrics["decode_ms_per_token"] is None
    assert "deploy.modes has no decode" in r.null_reasons["decode_ms_per_token"]
    assert r.to_row()["deploy"] == "prefill b1 p=max eager"
    assert set(COST_METRICS) <= set(r.metrics)


@pytest.mark.slow
def test_decode_and_generate_metrics_land_on_the_row() -> None:
    deploy = Deploy(modes=("decode", "generate"), context=12, new_tokens=4)
    r = evaluate(TINY, "charlm", "steps=2", config=TrainConfig(batch_size=8), deploy=deploy)
    assert r.status == "ok", r.reason
    m = r.metrics
    assert m["decode_ms_per_token"] > 0 and m["ttft_ms"] > 0 and m["tpot_ms"] > 0
    # the decode cache at its context: 1 layer x (k + v) x 2 heads x 12 tokens x 16 dims x 4 bytes
    assert m["kv_cache_mb"] == pytest.approx(2 * 2 * 12 * 16 * 4 / 2**20)
    row = r.to_row()
    assert row["deploy"] == "prefill+decode+generate b1 p=max c=12 n=4 eager"
    assert row["decode_context"] == 12 and row["generate_new_tokens"] == 4
    assert row["measure_mode"] == "prefill+decode+generate" and row["decode_recompiles_in_window"] == 0


@pytest.mark.slow
def test_a_decode_constraint_is_checked_before_training() -> None:
    r = evaluate(TINY, "charlm", "steps=50", config=TrainConfig(batch_size=8), constraints="kv_cache_mb<=0.00001")
    assert r.status == "infeasible" and "kv_cache_mb" in r.reason
    assert r.metrics["val_loss"] is None and r.metrics["kv_cache_mb"] > 0
