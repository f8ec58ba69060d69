"""The analytic cache size (search_space.cache_size) equals the cache the built model really keeps."""

from __future__ import annotations

import pytest
import torch

from archbench import Architecture, build
from archbench.search_space import registries
from archbench.search_space.cache_size import kv_cache_bytes, kv_cache_positions

PATTERNS = registries.ATTENTION.names()  # every registered pattern: a new one must state its cache size
WINDOW = 4


def _arch(attention: str, **kw: object) -> Architecture:
    window = WINDOW if registries.ATTENTION.meta(attention).get("uses_window") else 0
    base: dict[str, object] = dict(depth=2, width=16, heads=2, kv_heads=1, vocab_size=16, max_seq_len=32)
    return Architecture(attention=attention, window=window, **{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize("attention", PATTERNS)
def test_formula_equals_the_real_cache_after_prefill_and_after_steps(attention: str) -> None:
    """At contexts below, at and past the window (several blocks for block_sparse), built by one prefill and
    by prefill + incremental steps (in fp32; in bf16 after one prefill), the cache's bytes are the formula's."""
    ids = torch.randint(0, 16, (2, 20), generator=torch.Generator().manual_seed(1))
    arch = _arch(attention)
    torch.manual_seed(0)
    model = build(arch).eval()
    with torch.inference_mode():
        for context in (1, WINDOW - 1, WINDOW, 2 * WINDOW + 1, 3 * WINDOW, 19):
            _, cache = model.decode(ids[:, :context])
            assert cache.nbytes() == kv_cache_bytes(arch, context, batch=2), context
            assert sum(cache.lengths()) == kv_cache_positions(arch, context), context
        _, cache = model.decode(ids[:, :2])
        for pos in range(2, 19):  # one token at a time: the cache after each step, past three blocks
            _, cache = model.decode(ids[:, pos : pos + 1], cache)
            assert cache.nbytes() == kv_cache_bytes(arch, pos + 1, batch=2), pos + 1
        half = _arch(attention, quant="bf16")
        _, cache = build(half).eval().to(torch.bfloat16).decode(ids[:, :11])
        assert cache.nbytes() == kv_cache_bytes(half, 11, batch=2) < kv_cache_bytes(arch, 11, batch=2) + 1


def test_positions_per_pattern_as_documented() -> None:
    """g*C + (L-g)*min(C, W-1) with g = 0 (all windowed) or L (all dense); block-sparse at most 3W-1;
    linear keeps no positions but a per-kv-head D x D + D fp32 state."""
    c, depth = 50, 2
    assert kv_cache_positions(_arch("dense"), c) == depth * c
    assert kv_cache_positions(_arch("sliding_window"), c) == depth * (WINDOW - 1)
    assert kv_cache_positions(_arch("sliding_window"), 2) == depth * 2  # within the window: all of it
    assert 0 < kv_cache_positions(_arch("block_sparse"), c) <= depth * (3 * WINDOW - 1)
    linear = _arch("linear")
    assert kv_cache_positions(linear, c) == 0
    d = linear.head_dim
    assert kv_cache_bytes(linear, c) == kv_cache_bytes(linear, 1) == depth * linear.kv_heads * (d * d + d) * 4
    dense = _arch("dense")
    assert kv_cache_bytes(dense, c, bytes_per_value=2) * 2 == kv_cache_bytes(dense, c)


def test_primers_convolution_adds_its_two_inputs_per_layer_exactly() -> None:
    """qkv_conv keeps the last two fused q/k/v projection outputs per layer: the formula counts them."""
    ids = torch.randint(0, 16, (2, 12), generator=torch.Generator().manual_seed(2))
    for attention in ("dense", "sliding_window"):
        arch = _arch(attention, qkv_conv=True)
        model = build(arch).eval()
        with torch.inference_mode():
            for context in (1, 2, 7, 12):
                _, cache = model.decode(ids[:, :context])
                assert cache.nbytes() == kv_cache_bytes(arch, context, batch=2), (attention, context)
        plain = _arch(attention)
        tail = arch.depth * 2 * (arch.width + 2 * arch.kv_heads * arch.head_dim) * 4
        assert kv_cache_bytes(arch, 7) == kv_cache_bytes(plain, 7) + tail


def test_dynamic_depth_caches_at_most_the_capacity_bound() -> None:
    """Layers 1.. keep only routed tokens: never more than floor(capacity * C), layer 0 keeps all C."""
    ids = torch.randint(0, 16, (1, 24), generator=torch.Generator().manual_seed(3))
    arch = _arch("dense", depth=3, depth_capacity=0.5)
    full = _arch("dense", depth=3)
    torch.manual_seed(0)
    model = build(arch).eval()
    with torch.inference_mode():
        for context in (2, 9, 24):
            _, cache = model.decode(ids[:, :context])
            assert cache.nbytes() <= kv_cache_bytes(arch, context), context
            assert kv_cache_positions(arch, context) == context + 2 * (context // 2)
            assert kv_cache_bytes(arch, context) < kv_cache_bytes(full, context)
