"""Hybrid layer layouts: which layers attend globally, realised per layer and counted per layer."""

from __future__ import annotations

import itertools

import pytest
import torch

from archbench import Architecture, ArchitectureError, build
from archbench.search_space import registries
from archbench.search_space.cache_size import kv_cache_bytes, kv_cache_positions
from archbench.search_space.kv_cache import KVLayer, LinearState

RESIDUALS = registries.RESIDUALS.names()
CHEAP = [p for p in registries.ATTENTION.names() if p != "dense"]  # every registered cheaper pattern
# The hybrid layouts of depth 3 (uniform ones are tests/foundation/test_decode.py's): a global layer between
# cheap ones (every 2nd), and the last layer alone (cheap layers before a global one).
HYBRID = [(2, False), (0, True)]
VOCAB, WINDOW = 61, 8


def arch(attention: str = "sliding_window", **kw: object) -> Architecture:
    base: dict[str, object] = dict(
        depth=4, width=32, heads=4, kv_heads=2, vocab_size=VOCAB, max_seq_len=96, ffn_ratio=2.0, attention=attention
    )
    if registries.ATTENTION.meta(attention).get("uses_window"):
        base["window"] = WINDOW
    base.update(kw)
    return Architecture(**base)  # type: ignore[arg-type]


def perturbed(a: Architecture) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build(a).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def test_layer_attention_names_each_layer() -> None:
    a = arch(depth=6, global_every=2)
    assert a.layer_patterns == ("sliding_window", "dense") * 3
    assert a.global_layers == 3 and a.hybrid
    b = arch(depth=6, global_every=4, global_last=True)
    assert [b.layer_attention(i) for i in range(6)] == ["sliding_window"] * 3 + ["dense"] + ["sliding_window", "dense"]
    assert arch(depth=6, global_every=1).global_layers == 6 and not arch(depth=6, global_every=1).hybrid
    assert arch(depth=6).global_layers == 0
    with pytest.raises(IndexError):
        a.layer_attention(6)


def test_old_architectures_keep_their_ids_and_layouts_round_trip() -> None:
    assert Architecture().arch_id == "7af87ff765bc"  # uniform is the implicit layout
    assert arch().arch_id == arch(global_every=0, global_last=False).arch_id
    hybrid = arch(depth=6, global_every=3, global_last=False)
    assert hybrid.arch_id != arch(depth=6).arch_id
    assert Architecture.from_yaml(hybrid.to_yaml()) == hybrid
    assert Architecture.from_dict(hybrid.to_dict()).arch_id == hybrid.arch_id
    # Canonical: dense ignores the layout; a last layer every-k already makes global needs no flag.
    assert Architecture(global_every=2, global_last=True) == Architecture()
    assert arch(depth=6, global_every=3, global_last=True) == hybrid
    assert arch(depth=6, global_every=6) == arch(depth=6, global_last=True)  # the last layer alone
    assert "+global/3" in hybrid.describe() and "+global_last" in arch(global_last=True).describe()


@pytest.mark.parametrize(
    ("kwargs", "field", "allowed"),
    [
        ({"global_every": 5}, "global_every", "1..depth=4"),
        ({"global_every": -1}, "global_every", "integer >= 0"),
        ({"global_last": "yes"}, "global_last", "true or false"),
    ],
)
def test_a_layout_that_does_not_fit_is_one_line(kwargs: dict, field: str, allowed: str) -> None:
    with pytest.raises(ArchitectureError) as info:
        arch(**kwargs)
    assert "\n" not in str(info.value) and allowed in str(info.value) and info.value.field == field


@pytest.mark.slow
@pytest.mark.parametrize(("residual", "attention"), list(itertools.product(RESIDUALS, CHEAP)))
def test_hybrid_decoding_equals_the_full_forward(residual: str, attention: str) -> None:
    """Per hybrid layout: forward/backward finite and causal; greedy decoding of 64 tokens from the
    per-layer caches equals the full pass (fp32, 1e-5), and each layer keeps its own kind of cache."""
    gen = torch.Generator().manual_seed(1)
    for every, last in HYBRID:
        shape = dict(depth=3, width=16, heads=2, kv_heads=1)
        a = arch(attention, residual=residual, global_every=every, global_last=last, **shape)
        assert a.hybrid
        model = perturbed(a)
        seq = torch.randint(0, VOCAB, (1, 24), generator=gen)
        model.train()
        out = model(seq)
        out.pow(2).mean().backward()
        assert torch.isfinite(out).all()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        model.eval()
        with torch.no_grad():
            changed = seq.clone()
            changed[:, 12:] = (changed[:, 12:] + 1) % VOCAB
            torch.testing.assert_close(model(changed)[:, :12], model(seq)[:, :12], atol=1e-6, rtol=0)  # causal
        tokens, chosen = model.generate(seq[:, :4], 64)
        with torch.no_grad():
            full = model(tokens[:, :-1])[:, 3:]
        torch.testing.assert_close(chosen, full, atol=1e-5, rtol=0, msg=f"layout {every},{last}")
        _, cache = model.decode(tokens[:, :-1])
        for i, layer in enumerate(cache.layers):
            kind = a.layer_attention(i)
            assert isinstance(layer, LinearState if kind == "linear" else KVLayer)
            if kind == "dense":
                assert layer.length == tokens.shape[1] - 1  # global layers grow with the context


@pytest.mark.parametrize("attention", CHEAP)
@pytest.mark.parametrize(("depth", "every", "last"), [(4, 2, False), (4, 0, True), (3, 1, False), (4, 3, False)])
def test_measured_cache_has_the_formulas_size(attention: str, depth: int, every: int, last: bool) -> None:
    a = arch(attention, depth=depth, global_every=every, global_last=last, max_seq_len=40)
    model = build(a).eval()
    for context in (5, 8, 33):
        with torch.no_grad():
            _, cache = model.decode(torch.randint(0, VOCAB, (2, context)))
        assert cache.nbytes() == kv_cache_bytes(a, context, batch=2)
        g, kv = a.global_layers, a.kv_heads
        if attention == "sliding_window":  # the formula, positions per head group
            expected = g * context + (depth - g) * min(context, WINDOW - 1)
            assert kv_cache_positions(a, context) == expected
            assert sum(cache.lengths()) == expected
        assert sum(cache.lengths()) == kv_cache_positions(a, context)  # a linear layer: no positions
        per_position = 2 * a.head_dim * 4 * kv * 2
        if attention != "linear":
            assert cache.nbytes() == kv_cache_positions(a, context) * per_position


def test_cache_size_follows_the_layout_and_precision() -> None:
    long = arch(max_seq_len=9000, depth=6)
    sizes = [kv_cache_positions(long.replace(global_every=k), 8192) for k in (1, 2, 3, 6, 0)]
    assert sizes == [6 * 8192, 3 * 8192 + 3 * 7, 2 * 8192 + 4 * 7, 8192 + 5 * 7, 6 * 7]
    assert kv_cache_bytes(long.replace(quant="bf16"), 100) * 2 == kv_cache_bytes(long, 100)
    with pytest.raises(ValueError, match="context=-1"):
        kv_cache_positions(long, -1)
    linear = arch("linear", depth=6, global_every=3)  # 2 global layers keep positions, 4 linear ones a state
    d = linear.head_dim
    assert kv_cache_positions(linear, 100) == 2 * 100
    assert kv_cache_bytes(linear, 100) == linear.kv_heads * (2 * 100 * 2 * d * 4 + 4 * (d * d + d) * 4)


def test_flops_count_each_layer_by_its_own_pattern() -> None:
    from archbench.latency.flops import count_flops

    dense = count_flops(arch("dense", max_seq_len=64), 1, 64).attention
    cheap = count_flops(arch(max_seq_len=64), 1, 64).attention
    half = count_flops(arch(max_seq_len=64, global_every=2), 1, 64).attention
    assert cheap < half < dense
    assert half == (dense + cheap) // 2 or abs(2 * half - dense - cheap) <= 2  # two layers of each


def test_lm_hybrid_searches_the_layout_and_encodes_canonical_choices() -> None:
    from importlib import resources

    import yaml

    from archbench import SearchSpace
    from archbench.search_space.model import count_params

    text = (resources.files("archbench") / "conf" / "space" / "lm_hybrid.yaml").read_text()
    space = SearchSpace.from_dict(yaml.safe_load(text), task_vocab=192)
    assert {"global_every", "global_last", "attention", "depth", "width"} <= set(space.free_fields)
    archs = space.sample(8, seed=0)
    assert len({a.layout() for a in archs}) > 2 and all(a.vocab_size == 192 and a.kv_heads < a.heads for a in archs)
    for a in archs:
        assert space.decode(space.encode(a)) == a  # canonicalised layout choices still encode
    with torch.device("meta"):
        sizes = [count_params(build(a)) for a in archs[:3]]
    assert all(2e7 < n < 1.6e9 for n in sizes)
    last_only = space.sample(1, seed=0)[0].replace(depth=8, global_every=8, global_last=False)
    assert last_only.global_every == 0 and last_only.global_last and space.contains(last_only)
