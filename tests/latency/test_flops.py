"""FLOPs: torch's counter for the Linear layers, the attention core from the pattern, checked by hand."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from archbench.latency.flops import count_flops, count_model_flops
from archbench.search_space import Architecture, build
from archbench.search_space.registries import ATTENTION, RESIDUALS


def _linear_flops(arch: Architecture, b: int, s: int) -> int:
    """2 * tokens * in * out for every Linear of the decoder (qkv, proj, ffn x2, lm head)."""
    w, h = arch.width, arch.ffn_hidden
    per_layer = 3 * w * w + w * w + 2 * w * h
    return 2 * b * s * (arch.depth * per_layer + w * arch.vocab_size)


def test_dense_causal_long_narrow_matches_a_hand_count() -> None:
    # S=1024, width 32: attention is more than half of all FLOPs here.
    arch = Architecture(depth=2, width=32, heads=2, vocab_size=64, max_seq_len=1024)
    b, s, d = 2, 1024, arch.head_dim
    attention = arch.depth * 2 * b * arch.heads * s * (s + 1) * d  # 4*B*H*S^2*D * (S+1)/(2S)
    count = count_flops(arch, b, s)
    assert count.attention == attention
    assert count.counter == _linear_flops(arch, b, s)
    assert count.total == attention + _linear_flops(arch, b, s)
    assert count.attention > count.counter


def test_sliding_window_counts_only_the_kept_entries() -> None:
    arch = Architecture(
        depth=1, width=32, heads=2, vocab_size=64, max_seq_len=512, attention="sliding_window", window=64
    )
    s, w = 512, 64
    kept = w * (w + 1) // 2 + (s - w) * w  # row i keeps min(i + 1, w) keys
    count = count_flops(arch, 1, s)
    assert count.attention == 4 * arch.heads * arch.head_dim * kept
    assert count.counter == _linear_flops(arch, 1, s)


def test_non_causal_dense_equals_torch_counter_on_the_math_kernel() -> None:
    # The one case torch can count itself: the encoder's full S x S attention through SDPA's math path.
    arch = Architecture(depth=2, width=32, heads=4, vocab_size=64, max_seq_len=128)
    model = build(arch, num_classes=3).eval()
    idx = torch.randint(0, 64, (2, 128))
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        model(idx)
    ours = count_model_flops(model, idx)
    assert ours.attention > 0
    assert ours.total == counter.get_total_flops()
    assert count_flops(arch, 2, 128, num_classes=3).total == ours.total  # meta copy = real model


def test_linear_attention_is_counted_by_torch_and_grows_linearly() -> None:
    arch = Architecture(depth=1, width=32, heads=2, vocab_size=64, max_seq_len=1024, attention="linear")
    small, large = count_flops(arch, 1, 256), count_flops(arch, 1, 1024)
    assert small.attention == large.attention == 0  # no score matrix to count by hand
    assert small.counter > _linear_flops(arch, 1, 256)  # its einsums are seen by the counter
    assert large.total == 4 * small.total  # S x 4 -> FLOPs x 4 (multiples of the chunk)
    dense = Architecture(depth=1, width=32, heads=2, vocab_size=64, max_seq_len=1024)
    assert count_flops(dense, 1, 1024).total / count_flops(dense, 1, 256).total > 5


def test_counting_leaves_the_model_unchanged() -> None:
    arch = Architecture(depth=1, width=32, heads=2, vocab_size=64, max_seq_len=64)
    model = build(arch).eval()
    patterns = list(model.trunk.patterns)
    idx = torch.randint(0, 64, (1, 64))
    before = model(idx)
    count_model_flops(model, idx)
    assert all(after is before for after, before in zip(model.trunk.patterns, patterns, strict=True))
    assert torch.equal(model(idx), before)


@pytest.mark.slow
@pytest.mark.parametrize("residual", RESIDUALS.names())
@pytest.mark.parametrize("attention", ATTENTION.names())
def test_every_residual_and_pattern_can_be_counted(residual: str, attention: str) -> None:
    """A regression: value_residual once passed a slice of a parameter made under no_grad to a block,
    which torch's module tracker (inside FlopCounterMode) refused, so its FLOPs and latency were null."""
    window = 8 if ATTENTION.meta(attention).get("uses_window") else 0
    arch = Architecture(depth=3, width=64, heads=4, residual=residual, attention=attention, window=window,
                        max_seq_len=64, unique_layers=1)  # fmt: skip
    count = count_flops(arch, 1, 64)
    assert count.total > count.attention >= 0 and count.counter > 0


@pytest.mark.parametrize("attention", ATTENTION.names())
@pytest.mark.parametrize("kv_heads", [1, 2])
def test_grouped_query_attention_is_counted(attention: str, kv_heads: int) -> None:
    """A regression: the counting stand-in returned v with kv_heads heads, so every GQA model failed to be
    measured. Attention-core FLOPs do not change with kv_heads; the qkv projection shrinks."""
    window = 8 if ATTENTION.meta(attention).get("uses_window") else 0
    mha = Architecture(depth=2, width=64, heads=4, attention=attention, window=window, max_seq_len=64)
    gqa = mha.replace(kv_heads=kv_heads)
    full, grouped = count_flops(mha, 2, 64), count_flops(gqa, 2, 64)
    assert grouped.attention == full.attention
    saved = 2 * 2 * 64 * mha.depth * 64 * 2 * (4 - kv_heads) * mha.head_dim  # k and v rows of qkv not computed
    assert full.counter - grouped.counter == saved
