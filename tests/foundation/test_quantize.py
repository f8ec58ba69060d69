"""quantize(): the deployed form of a trained float model, or `unsupported` with a reason."""

from __future__ import annotations

import pytest
import torch

from archbench import Architecture, build
from archbench.search_space import registries
from archbench.search_space.quantize import quantize, supported_quants, unsupported_reason

PATTERNS = registries.ATTENTION.names()  # every registered attention pattern


def model_and_input(attention: str = "dense") -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    arch = Architecture(
        depth=2, width=64, heads=4, vocab_size=97, max_seq_len=32, attention=attention,
        window=8 if attention in ("sliding_window", "block_sparse") else 0,
    )  # fmt: skip
    return build(arch).eval(), torch.randint(0, 97, (2, 32))


@pytest.mark.slow
@pytest.mark.parametrize("attention", PATTERNS)
@pytest.mark.parametrize(
    ("quant", "dtype", "tol"),
    [("fp32", torch.float32, 0.0), ("bf16", torch.bfloat16, 0.05), ("fp16", torch.float16, 0.01),
     ("int8", torch.float32, 0.05), ("int8_weight_only", torch.float32, 0.05)],
)  # fmt: skip
def test_cpu_quant_modes_run_and_stay_close(attention: str, quant: str, dtype: torch.dtype, tol: float) -> None:
    model, idx = model_and_input(attention)
    with torch.no_grad():
        ref = model(idx)
    result = quantize(model, quant, "cpu")
    assert result.ok and result.status == "ok" and result.reason == ""
    with torch.no_grad():
        out = result.model(idx)
    assert out.dtype == dtype
    err = (out.float() - ref).abs().max().item()
    assert err <= tol + 1e-7
    # The float model is left as it was.
    assert next(model.parameters()).dtype == torch.float32
    with torch.no_grad():
        assert torch.equal(model(idx), ref)


@pytest.mark.parametrize("quant", ["int8", "int8_weight_only"])
def test_integer_modes_really_replace_block_weights(quant: str) -> None:
    model, _ = model_and_input()
    q = quantize(model, quant, "cpu").model
    fc = q.trunk.blocks[0].ffn.fc.weight
    assert type(fc) is not torch.nn.Parameter and "Int8" in type(fc).__name__
    # Embeddings and the (tied) head stay float.
    assert q.trunk.wte.weight.dtype == torch.float32
    assert q.lm_head.weight is q.trunk.wte.weight


def test_fp8_is_unsupported_on_cpu_with_a_reason_not_an_exception() -> None:
    model, _ = model_and_input()
    result = quantize(model, "fp8", "cpu")
    assert result.status == "unsupported" and result.model is None
    assert "fp8 needs a CUDA GPU" in result.reason
    assert supported_quants("cpu")["fp8"] == result.reason
    assert all(supported_quants("cpu")[q] is None for q in ("fp32", "bf16", "fp16", "int8", "int8_weight_only"))


def test_unknown_quant_is_reported() -> None:
    assert "unknown quant" in (unsupported_reason("int3", "cpu") or "")
    model, _ = model_and_input()
    assert quantize(model, "int3", "cpu").status == "unsupported"


@pytest.mark.gpu
@pytest.mark.parametrize("quant", ["bf16", "fp16", "int8", "int8_weight_only", "fp8"])
def test_gpu_quant_modes(quant: str) -> None:
    model, idx = model_and_input("sliding_window")
    model, idx = model.cuda(), idx.cuda()
    reason = unsupported_reason(quant, "cuda")
    result = quantize(model, quant, "cuda")
    if reason:
        assert result.status == "unsupported"
        pytest.skip(reason)
    with torch.no_grad():
        ref, out = model(idx), result.model(idx)
    assert (out.float() - ref).abs().max().item() < 0.1
