"""Model bytes after quantization (real storage of torchao tensors) and CPU peak memory."""

from __future__ import annotations

import torch
from torch import nn

from archbench.latency.memory import peak_cpu_alloc_bytes, peak_memory_mb
from archbench.latency.size import model_bytes
from archbench.search_space import Architecture, build
from archbench.search_space.model import count_params
from archbench.search_space.quantize import quantize

ARCH = Architecture(depth=2, width=64, heads=4, vocab_size=256, max_seq_len=64)


def test_float_models_are_params_times_element_size_with_tied_weights_once() -> None:
    model = build(ARCH)
    assert model.lm_head.weight is model.trunk.wte.weight
    assert model_bytes(model) == 4 * count_params(model)
    assert model_bytes(quantize(model, "bf16", "cpu").model) == 2 * count_params(model)
    untied = build(ARCH.replace(tie_embeddings=False))
    assert model_bytes(untied) == 4 * count_params(untied) == model_bytes(model) + 4 * 256 * 64


def test_int8_counts_int8_weights_and_their_scales() -> None:
    model = build(ARCH)
    q = quantize(model, "int8", "cpu").model
    block_linears = [m for name, m in model.named_modules() if ".blocks." in f".{name}" and isinstance(m, nn.Linear)]
    saved = 0
    for lin in block_linears:
        out, inp = lin.weight.shape
        saved += 4 * out * inp - (out * inp + 4 * out + out)  # int8 data + fp32 row scale + int8 zero point
    assert model_bytes(q) == model_bytes(model) - saved
    assert model_bytes(q) < 0.5 * model_bytes(model)


def test_cpu_peak_sees_simultaneous_but_not_sequential_allocations() -> None:
    mb4 = 4 * 2**20

    def together() -> None:
        a = torch.empty(mb4, dtype=torch.uint8)
        b = torch.empty(mb4, dtype=torch.uint8)
        del a, b

    def one_after_another() -> None:
        for _ in range(2):
            a = torch.empty(mb4, dtype=torch.uint8)
            del a

    assert 2 * mb4 <= peak_cpu_alloc_bytes(together) < 2 * mb4 + 2**20
    assert mb4 <= peak_cpu_alloc_bytes(one_after_another) < 2 * mb4


def test_peak_memory_adds_the_resident_bytes_and_says_what_it_counts() -> None:
    value, note = peak_memory_mb(lambda: torch.empty(2**20, dtype=torch.uint8), "cpu", resident_bytes=3 * 2**20)
    assert value is not None and 4.0 <= value < 5.0
    assert "profiler" in note
    assert peak_memory_mb(lambda: None, "meta")[0] is None
