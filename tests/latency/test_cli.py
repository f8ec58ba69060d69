"""``archbench measure``: JSON keys, table output, errors in one line with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from archbench.cli.main import main
from archbench.search_space import Architecture

FAST = ["--time-cap", "0.3", "--cv-target", "0.5", "--no-energy"]


@pytest.fixture
def arch_file(tmp_path: Path) -> Path:
    path = tmp_path / "arch.yaml"
    path.write_text(Architecture(depth=1, width=32, heads=2, max_seq_len=32, quant="int8").to_yaml())
    return path


def test_json_has_the_documented_keys_and_reasons(arch_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["measure", str(arch_file), "--format", "json", "--seq", "16", *FAST]) == 0
    record = json.loads(capsys.readouterr().out)
    for key in ("latency_ms", "latency_p90_ms", "latency_cv", "energy_mj", "avg_power_w", "peak_mem_mb",
                "params", "flops", "model_bytes", "device_name", "device_kind"):  # fmt: skip
        assert key in record, key
    assert record["seq_len"] == 16 and record["latency_ms"] > 0
    for key, value in record.items():
        if value is None and key in ("energy_mj", "avg_power_w", "roofline_fraction"):
            assert record["null_reasons"][key]


def test_table_output(arch_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["measure", str(arch_file), *FAST]) == 0
    out = capsys.readouterr().out
    assert "latency_ms" in out and "energy_mj" in out and "null" in out


def test_errors_are_one_line_and_exit_2(arch_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["measure", str(tmp_path / "missing.yaml")]) == 2
    assert main(["measure", str(arch_file), "--seq", "64"]) == 2
    assert "max_seq_len=32" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["measure", str(arch_file), "--device", "cuda"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "no CUDA GPU" in err
