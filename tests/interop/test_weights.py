"""archbench's safetensors weights: self-describing, tied once, atomic, strict on load; evaluate keeps them."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from archbench.errors import ConfigError
from archbench.evaluators import evaluate, get_task
from archbench.interop.weights import ARCH, ARCH_ID, load_model, load_weights, save_trained, save_weights
from archbench.search_space import Architecture, build
from tests.interop.conftest import EXACT, tokens, trained_like


@pytest.mark.parametrize("tied", [True, False])
def test_weights_round_trip_to_the_same_logits(tied: bool, tmp_path) -> None:
    arch = EXACT["llama"].replace(tie_embeddings=tied)
    model = trained_like(arch)
    path = save_weights(model, arch, tmp_path / "w.safetensors", metadata={"task": "charlm"})
    with safe_open(str(path), framework="pt") as f:
        meta, names = f.metadata(), set(f.keys())
    assert json.loads(meta[ARCH]) == arch.to_dict() and meta[ARCH_ID] == arch.arch_id and meta["task"] == "charlm"
    assert ("lm_head.weight" in names) is not tied  # a tied head is stored once
    loaded_arch, loaded = load_model(path)
    assert loaded_arch == arch
    if tied:
        assert loaded.lm_head.weight is loaded.trunk.wte.weight
    idx = tokens(arch)
    with torch.no_grad():
        assert torch.equal(model(idx), loaded.eval()(idx))
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # nothing temporary left


def test_a_classifier_round_trips_and_says_so(tmp_path) -> None:
    arch = EXACT["gpt2"]
    model = build(arch, num_classes=3)
    save_weights(model, arch, tmp_path / "c.safetensors", num_classes=3)
    w = load_weights(tmp_path / "c.safetensors")
    assert w.num_classes == 3 and "head.weight" in w.tensors
    assert load_model(tmp_path / "c.safetensors")[1].head.out_features == 3


def test_bad_weights_files_are_one_line(tmp_path) -> None:
    with pytest.raises(ConfigError, match="weights file not found"):
        load_weights(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ConfigError, match="not a safetensors file"):
        load_weights(tmp_path / "junk.safetensors")
    save_file({"x": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ConfigError, match="not written by archbench"):
        load_weights(tmp_path / "foreign.safetensors")


def test_save_trained_names_the_run_in_a_directory(tmp_path) -> None:
    arch = EXACT["gpt2"]
    path = save_trained(trained_like(arch), arch, tmp_path / "kept", task="charlm", budget="steps=40", seed=2)
    assert path.is_absolute() and path.name == f"{arch.arch_id}-charlm-steps40-seed2.safetensors"
    explicit = save_trained(trained_like(arch), arch, tmp_path / "one.safetensors", task="t", budget="b", seed=0)
    assert explicit.name == "one.safetensors"


@pytest.mark.slow
def test_evaluate_keeps_the_trained_float_weights_before_quantization(tmp_path) -> None:
    arch = Architecture(depth=1, width=32, heads=2, max_seq_len=64, quant="bf16")
    result = evaluate(arch, "charlm", "steps=3", measure=False, save_weights=tmp_path / "kept")
    assert result.status == "ok", result.reason
    row = result.to_row()
    assert row["weights"] == result.weights and result.weights.endswith(".safetensors")
    w = load_weights(result.weights)
    assert w.arch == arch and w.metadata["task"] == "charlm" and w.metadata["budget"] == "steps=3"
    assert all(t.dtype == torch.float32 for t in w.tensors.values())  # the float model, not the bf16 one
    torch.manual_seed(0)  # the model evaluate starts from (seed 0), before training
    task = get_task("charlm")
    task.prepare(arch)
    initial = task.build(arch).state_dict()
    moved = {k: (t - initial[k]).abs().max().item() for k, t in w.tensors.items()}
    assert all(0 < m < 0.02 for m in moved.values()), moved  # each a few Adam steps away from where it started
    plain = evaluate(arch.replace(quant="fp32"), "charlm", "steps=1", measure=False)
    assert plain.weights is None and plain.to_row()["weights"] is None
