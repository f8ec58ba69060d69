"""Decode and generate modes: per-token latency from a warm cache, TTFT/TPOT, cache size, compiled runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from archbench.cli.main import main
from archbench.errors import ConfigError
from archbench.latency import StopRule
from archbench.latency.decode import DECODE_KEYS, GENERATE_KEYS, measure_decode, measure_generate
from archbench.search_space import Architecture, build
from archbench.trial import METRICS, TrialResult

RULE = StopRule(cv_target=0.5, min_samples=5, min_time_s=0.05, time_cap_s=0.5)
QUICK = {"warmup_s": 0.05, "warmup_calls": 2}
ARCH = Architecture(depth=2, width=64, heads=4, kv_heads=2, vocab_size=256, max_seq_len=64)


def test_decode_reports_per_token_latency_and_the_cache_size() -> None:
    m = measure_decode(build(ARCH), ARCH, batch=3, context=40, rule=RULE, **QUICK)
    assert set(m.metrics) <= set(METRICS)
    assert {k for k, v in m.metrics.items() if v is None} == {"compile_s"} == set(m.null_reasons)
    assert 0 < m.metrics["decode_ms_per_token"] <= m.metrics["decode_p90_ms"]
    assert m.metrics["decode_samples"] >= 2
    # 2 layers x (k + v) x batch 3 x 2 kv heads x 40 tokens x 16 dims x 4 bytes
    assert m.metrics["kv_cache_mb"] == pytest.approx(2 * 2 * 3 * 2 * 40 * 16 * 4 / 2**20)
    assert m.hardware["measure_mode"] == "decode" and m.hardware["exec_mode"] == "eager"
    assert m.hardware["decode_context"] == 40 and m.hardware["recompiles_in_window"] == 0
    TrialResult(ARCH, task="t", status="ok", metrics=m.metrics, null_reasons=m.null_reasons)


@pytest.mark.slow
def test_bounded_caches_do_not_grow_with_the_context() -> None:
    sizes = {}
    for attention in ("dense", "sliding_window", "linear"):
        arch = ARCH.replace(attention=attention, window=8 if attention == "sliding_window" else 0)
        sizes[attention] = [
            measure_decode(build(arch), arch, context=c, rule=RULE, memory=False, **QUICK).metrics["kv_cache_mb"]
            for c in (16, 48)
        ]
    assert sizes["dense"][1] == pytest.approx(3 * sizes["dense"][0])
    assert sizes["sliding_window"][0] == sizes["sliding_window"][1] < sizes["dense"][0]
    assert sizes["linear"][0] == sizes["linear"][1]


@pytest.mark.slow
def test_generate_reports_ttft_and_tpot() -> None:
    m = measure_generate(build(ARCH), ARCH, batch=2, prompt=24, new_tokens=8, rule=RULE)
    assert {k for k, v in m.metrics.items() if v is None} == {"compile_s"}
    assert m.metrics["ttft_ms"] > 0 and m.metrics["tpot_ms"] > 0 and m.metrics["generate_samples"] >= 2
    assert m.hardware["measure_mode"] == "generate" and m.hardware["generate_new_tokens"] == 8
    # the cache after prompt + new - 1 tokens (the last token is chosen but not fed back)
    assert m.metrics["kv_cache_mb"] == pytest.approx(2 * 2 * 2 * 2 * 31 * 16 * 4 / 2**20)


@pytest.mark.slow
def test_compiled_decode_records_compile_time_and_no_recompile_in_the_window() -> None:
    torch._dynamo.reset()
    arch = ARCH.replace(depth=1)
    m = measure_decode(build(arch), arch, context=20, exec_mode="compile", rule=RULE, memory=False, **QUICK)
    assert m.hardware["exec_mode"] == "compile" and m.metrics["compile_s"] > 0
    assert m.hardware["recompiles_in_window"] == 0 and m.metrics["decode_ms_per_token"] > 0
    g = measure_generate(build(arch), arch, prompt=10, new_tokens=6, exec_mode="compile", rule=RULE)
    assert g.metrics["compile_s"] > 0 and g.hardware["recompiles_in_window"] == 0 and g.metrics["tpot_ms"] > 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: measure_decode(m, ARCH, context=64), "context=64"),
        (lambda m: measure_decode(m, ARCH, context=8, exec_mode="jit"), "exec_mode='jit'"),
        (lambda m: measure_generate(m, ARCH, prompt=60, new_tokens=8), "prompt + new <= max_seq_len=64"),
        (lambda m: measure_generate(m, ARCH, prompt=8, new_tokens=1), "new >= 2"),
    ],
)
def test_bad_shapes_are_config_errors(call: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("+", r"\+").replace("(", r"\(")):
        call(build(ARCH))  # type: ignore[operator]


def test_an_encoder_cannot_be_decoded() -> None:
    with pytest.raises(ConfigError, match="no incremental decoding"):
        measure_decode(build(ARCH, num_classes=3), ARCH, context=8)


FAST = ["--time-cap", "0.3", "--cv-target", "0.5"]


@pytest.fixture
def arch_file(tmp_path: Path) -> Path:
    path = tmp_path / "arch.yaml"
    path.write_text(ARCH.replace(quant="int8_weight_only").to_yaml())
    return path


@pytest.mark.slow
def test_cli_decode_and_generate_json(arch_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["measure", str(arch_file), "--mode", "decode", "--batch", "2", "--context", "30",
                 "--format", "json", *FAST]) == 0  # fmt: skip
    rec = json.loads(capsys.readouterr().out)
    assert rec["mode"] == "decode" and rec["context"] == 30 and rec["batch"] == 2
    assert all(rec[k] is not None for k in DECODE_KEYS) and rec["kv_cache_mb"] > 0
    assert main(["measure", str(arch_file), "--mode", "generate", "--prompt", "16", "--new", "4",
                 "--format", "json", *FAST]) == 0  # fmt: skip
    rec = json.loads(capsys.readouterr().out)
    assert rec["mode"] == "generate" and rec["prompt"] == 16 and rec["new"] == 4
    assert all(rec[k] is not None for k in GENERATE_KEYS)
    assert main(["measure", str(arch_file), "--mode", "decode", "--context", "12", *FAST]) == 0
    out = capsys.readouterr().out
    assert "decode_ms_per_token" in out and "kv_cache_mb" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "decode", "--context", "64"], "must be below max_seq_len=64"),
        (["--mode", "generate", "--new", "1"], "at least 2 new tokens"),
        (["--mode", "generate", "--prompt", "60", "--new", "8"], "exceeds max_seq_len=64"),
        (["--mode", "decode", "--classes", "3"], "needs the decoder LM"),
    ],
)
def test_cli_errors_are_one_line(
    arch_file: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["measure", str(arch_file), *args]) == 2
    err = capsys.readouterr().err
    assert message in err
