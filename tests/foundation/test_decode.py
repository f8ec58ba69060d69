"""Incremental decoding with a cache: equal to the full forward pass, with the memory each pattern promises."""

from __future__ import annotations

import itertools

import pytest
import torch

from archbench import Architecture, build
from archbench.search_space import registries
from archbench.search_space.kv_cache import KVLayer, LinearState
from archbench.search_space.model import DecoderLM

RESIDUALS = registries.RESIDUALS.names()  # every registered residual type
PATTERNS = registries.ATTENTION.names()  # every registered attention pattern
POS = ["learned", "rope", "none"]
VOCAB, WINDOW, NEW = 61, 8, 64


def lm(**kw: object) -> DecoderLM:
    base: dict[str, object] = dict(
        depth=3, width=32, heads=4, kv_heads=2, vocab_size=VOCAB, max_seq_len=96, ffn_ratio=2.0
    )
    base.update(kw)
    if registries.ATTENTION.meta(str(base.get("attention", "dense"))).get("uses_window"):
        base.setdefault("window", WINDOW)
    torch.manual_seed(0)
    model = build(Architecture(**base)).eval()  # type: ignore[arg-type]
    with torch.no_grad():  # move off the init so zero-initialised gates and identity weights matter
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    assert isinstance(model, DecoderLM)
    return model


# Every pair of (residual, pattern), (residual, position) and (pattern, position) once: the position encoding
# cycles over the residual x pattern grid. The full product (3x the cases) cost a minute of the suite's ten;
# the conformance suites run each axis in full on its own.
PAIRWISE = [
    (r, a, POS[(i + j) % len(POS)]) for (i, r), (j, a) in itertools.product(enumerate(RESIDUALS), enumerate(PATTERNS))
]


@pytest.mark.slow
@pytest.mark.parametrize(("residual", "attention", "pos"), PAIRWISE)
def test_incremental_logits_equal_the_full_forward(residual: str, attention: str, pos: str) -> None:
    """Greedy decoding of 64 tokens from the cache gives the logits of the full forward pass (fp32, 1e-5)."""
    model = lm(residual=residual, attention=attention, pos_encoding=pos)
    prompt = torch.randint(0, VOCAB, (2, 11), generator=torch.Generator().manual_seed(1))
    tokens, chosen = model.generate(prompt, NEW)
    assert tokens.shape == (2, 11 + NEW) and chosen.shape == (2, NEW, VOCAB)
    with torch.no_grad():
        full = model(tokens[:, :-1])[:, 10:]
    torch.testing.assert_close(chosen, full, atol=1e-5, rtol=0)
    assert torch.equal(tokens[:, 11:], full.argmax(-1))  # greedy picked what the full pass would


@pytest.mark.parametrize("attention", PATTERNS)
def test_weight_sharing_keeps_a_cache_per_layer(attention: str) -> None:
    model = lm(attention=attention, depth=4, unique_layers=2, residual="value_residual")
    prompt = torch.randint(0, VOCAB, (1, 5), generator=torch.Generator().manual_seed(2))
    tokens, chosen = model.generate(prompt, 20)
    _, cache = model.decode(prompt)
    assert len(cache.layers) == 4
    with torch.no_grad():
        torch.testing.assert_close(chosen, model(tokens[:, :-1])[:, 4:], atol=1e-5, rtol=0)


@pytest.mark.parametrize("attention", PATTERNS)
def test_multi_token_steps_equal_single_token_steps(attention: str) -> None:
    """Feeding 7 tokens in one step (speculative or chunked prefill) equals the full pass too."""
    model = lm(attention=attention, pos_encoding="rope")
    seq = torch.randint(0, VOCAB, (2, 40), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full = model(seq)
        logits, cache = model.decode(seq[:, :13])
        parts = [logits]
        for start in range(13, 40, 7):
            logits, cache = model.decode(seq[:, start : start + 7], cache)
            parts.append(logits)
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=0)
    assert cache.pos == 40


def test_a_cache_is_never_modified_by_a_step() -> None:
    model = lm(attention="dense")
    prompt = torch.randint(0, VOCAB, (1, 9))
    with torch.no_grad():
        _, cache = model.decode(prompt)
        before = [(layer.k.clone(), layer.v.clone()) for layer in cache.layers if isinstance(layer, KVLayer)]
        a, after_a = model.decode(torch.tensor([[3]]), cache)
        b, _ = model.decode(torch.tensor([[3]]), cache)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert cache.pos == 9 and after_a.pos == 10 and cache.lengths() == (9, 9, 9)
    for (k, v), layer in zip(before, cache.layers, strict=True):
        assert isinstance(layer, KVLayer) and torch.equal(k, layer.k) and torch.equal(v, layer.v)


def _cache_sizes(model: DecoderLM, steps: int) -> list[tuple[tuple[int, ...], int]]:
    sizes = []
    with torch.no_grad():
        logits, cache = model.decode(torch.randint(0, VOCAB, (1, 3)))
        for _ in range(steps):
            logits, cache = model.decode(logits[:, -1:].argmax(-1), cache)
            sizes.append((cache.lengths(), cache.nbytes()))
    return sizes


@pytest.mark.slow
def test_dense_cache_grows_with_the_context() -> None:
    sizes = _cache_sizes(lm(attention="dense"), 40)
    assert [s[0][0] for s in sizes] == list(range(4, 44))
    # 3 layers x (k + v) x batch 1 x 2 kv heads x 8 dims x 4 bytes per cached token
    assert sizes[-1][1] == 3 * 2 * 2 * 8 * 4 * 43


@pytest.mark.slow
def test_sliding_window_cache_never_grows_past_the_window() -> None:
    sizes = _cache_sizes(lm(attention="sliding_window"), 80)
    assert max(length for s in sizes for length in s[0]) == WINDOW - 1
    assert len({nbytes for _, nbytes in sizes[10:]}) == 1  # bounded: the same bytes however long it runs


@pytest.mark.slow
def test_block_sparse_cache_is_bounded_by_three_blocks() -> None:
    sizes = _cache_sizes(lm(attention="block_sparse"), 80)
    assert max(length for s in sizes for length in s[0]) <= 3 * WINDOW
    assert sizes[-1][0][0] < 83  # far fewer than the tokens seen


def test_linear_attention_carries_a_constant_size_state() -> None:
    model = lm(attention="linear")
    sizes = _cache_sizes(model, 50)
    assert len({nbytes for _, nbytes in sizes}) == 1 and all(s[0] == (0, 0, 0) for s in sizes)
    _, cache = model.decode(torch.randint(0, VOCAB, (1, 3)))
    state = cache.layers[0]
    assert isinstance(state, LinearState)
    assert state.kv.shape == (1, 2, 8, 8) and state.kv.dtype == torch.float32  # per kv head: GQA shrinks it


def test_grouped_query_attention_shrinks_the_cache() -> None:
    prompt = torch.randint(0, VOCAB, (1, 20))
    sizes = {}
    for kv in (4, 2, 1):
        with torch.no_grad():
            sizes[kv] = lm(kv_heads=kv).decode(prompt)[1].nbytes()
    assert sizes[4] == 2 * sizes[2] == 4 * sizes[1]


def test_decoding_past_max_seq_len_is_refused() -> None:
    model = lm(max_seq_len=16)
    with torch.no_grad():
        _, cache = model.decode(torch.randint(0, VOCAB, (1, 16)))
        with pytest.raises(ValueError, match="exceeds max_seq_len=16"):
            model.decode(torch.tensor([[1]]), cache)


def test_an_encoder_has_no_incremental_decoding() -> None:
    enc = build(Architecture(depth=1, width=32, heads=4, vocab_size=VOCAB, max_seq_len=32), num_classes=3)
    assert not hasattr(enc, "decode")
    from archbench.search_space.attention import make_pattern

    pattern = make_pattern("dense", 0, causal=False)
    q = torch.randn(1, 4, 5, 8)
    with pytest.raises(ValueError, match="causal"):
        pattern.prefill(q, q, q)
