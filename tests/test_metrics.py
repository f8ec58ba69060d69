"""The metric table: the facts each list of metric names derives from, and that the lists agree with it."""

from __future__ import annotations

import pytest

from archbench import metrics
from archbench.errors import UnknownNameError
from archbench.metrics import TABLE, get, names


def test_every_name_is_unique_and_described() -> None:
    assert len({m.name for m in TABLE}) == len(TABLE)
    assert all(m.description and m.name.isidentifier() for m in TABLE)


def test_the_facts_the_search_and_the_measurement_rely_on() -> None:
    # a quick look measures these exactly as a full one does (a screen may reject on them)
    assert set(names(source="measurement", timed=False)) == {
        "params", "flops", "model_bytes", "peak_mem_mb", "kv_cache_mb", "kv_cache_bytes_per_token",
    }  # fmt: skip
    # NVML only: a CPU-only cluster refuses them as objectives
    assert names(needs_gpu=True) == ("energy_mj", "energy_above_idle_mj", "avg_power_w")
    # what a constraint may bound before training
    assert set(names(pretrain=True)) == {
        "params", "flops", "model_bytes", "latency_ms", "latency_p90_ms", "energy_mj", "energy_above_idle_mj",
        "avg_power_w", "peak_mem_mb", "prefill_ms", "decode_ms_per_token", "decode_p90_ms", "ttft_ms", "tpot_ms",
        "kv_cache_mb", "kv_cache_bytes_per_token",
    }  # fmt: skip
    assert set(names(direction="max")) == {"val_acc", "val_acc_quant", "train_tokens_per_s", "roofline_fraction"}
    assert names(source="validation") == (
        "val_loss", "val_bpb", "val_acc", "val_loss_quant", "val_bpb_quant", "val_acc_quant",
    )  # fmt: skip
    assert names(source="training") == ("train_time_s", "train_tokens_per_s", "train_resumed_steps")
    assert names(mode="decode") == (
        "decode_ms_per_token",
        "decode_p90_ms",
        "decode_cv",
        "decode_samples",
        "kv_cache_mb",
    )
    assert names(mode="generate") == ("ttft_ms", "tpot_ms", "generate_cv", "generate_samples")


@pytest.mark.parametrize("metric", TABLE, ids=lambda m: m.name)
def test_each_metric_is_consistent(metric: metrics.Metric) -> None:
    if metric.pretrain or metric.needs_gpu or metric.timed:
        assert metric.source == "measurement"
    if metric.integer:
        assert metric.unit in ("", "B") and metric.direction == "min"  # a count, or a size in bytes
    if metric.unit == "ms":
        assert metric.timed and metric.name.endswith(("_ms", "_ms_per_token"))
    if metric.needs_gpu:
        assert metric.timed and metric.measures == "energy"


def test_the_lists_derive_from_the_table() -> None:
    from archbench.cli.leaderboard import QUICK_LOOK
    from archbench.cli.measure import UNITS
    from archbench.constraints import PRETRAIN_METRICS
    from archbench.deploy import MODE_METRICS
    from archbench.leaderboard.objectives import Objective
    from archbench.leaderboard.schema import COUNT_METRICS, metric_columns
    from archbench.trial import METRICS

    assert list(METRICS) == [m.name for m in TABLE]
    assert [n for n, t in metric_columns().items() if t.is_integer()] == list(names(integer=True))
    assert set(COUNT_METRICS) == set(names(integer=True))
    assert set(PRETRAIN_METRICS) == set(names(pretrain=True))
    assert set(MODE_METRICS) == {"decode", "generate"}
    assert QUICK_LOOK == ("val_loss", "val_bpb", "val_acc", "latency_ms", "energy_mj", "peak_mem_mb", "params")
    assert UNITS["latency_ms"] == "ms" and UNITS["kv_cache_mb"] == "MiB" and "params" not in UNITS
    assert [Objective.parse(n).sense for n in ("val_acc", "val_loss", "roofline_fraction", "my_metric")] == [
        "max", "min", "max", "min",
    ]  # fmt: skip


def test_unknown_names_and_attributes_fail_clearly() -> None:
    assert get("val_acc").direction == "max"
    with pytest.raises(UnknownNameError, match="unknown metric 'latncy_ms'; known: val_loss, "):
        get("latncy_ms")
    with pytest.raises(TypeError, match="Metric has no attribute 'gpu'"):
        names(gpu=True)
