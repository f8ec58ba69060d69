"""The contract of an attention pattern, run on every entry of the registry: registering one tests it.

At the pattern's own level (q, k, v tensors, grouped-query heads included): the torch-free registry
facts agree with the class; a query sees exactly the keys its ``allowed`` mask names; a pattern that
caches keys and values is softmax attention over that mask (so it matches the dense reference where the
mask is dense) and counts its FLOPs from it; decoding token by token from ``prefill``'s cache gives the
full pass's outputs; the encoder (non-causal) form lets a query see later keys.
"""

from __future__ import annotations

import math
from dataclasses import fields

import pytest
import torch

from archbench import ATTENTION, Architecture
from archbench.search_space.attention import AttentionPattern, make_pattern
from archbench.search_space.kv_cache import KVLayer

B, H, KV_HEADS, S, D, WINDOW = 2, 4, 2, 13, 8, 4
NAMES = ATTENTION.names()


def pattern(name: str, causal: bool = True, window: int = WINDOW) -> AttentionPattern:
    return make_pattern(name, window if ATTENTION.meta(name).get("uses_window") else 0, causal)


def qkv(seed: int = 0, s: int = S) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(B, H, s, D, generator=g),
        torch.randn(B, KV_HEADS, s, D, generator=g),
        torch.randn(B, KV_HEADS, s, D, generator=g),
    )


def causal_mask(p: AttentionPattern, s: int = S) -> torch.Tensor:
    idx = torch.arange(s)
    return p.allowed(idx, idx)


def softmax_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    return scores.masked_fill(~mask, float("-inf")).softmax(-1) @ v


def caches_keys(p: AttentionPattern) -> bool:
    q, k, v = qkv()
    with torch.no_grad():
        return isinstance(p.prefill(q, k, v)[1], KVLayer)


@pytest.mark.parametrize("name", NAMES)
def test_the_registry_facts_agree_with_the_class(name: str) -> None:
    cls = ATTENTION.get(name)
    assert isinstance(cls, type) and issubclass(cls, AttentionPattern)
    assert ATTENTION.meta(name).get("uses_window", False) == cls.uses_window
    # an Architecture validates the window exactly when the pattern uses one
    a = Architecture(depth=1, width=32, heads=4, attention=name, window=WINDOW, max_seq_len=32)
    assert a.window == (WINDOW if cls.uses_window else 0)


@pytest.mark.parametrize("causal", [True, False], ids=["decoder", "encoder"])
@pytest.mark.parametrize("name", NAMES)
def test_output_has_the_queries_shape_and_is_finite(name: str, causal: bool) -> None:
    q, k, v = qkv()
    with torch.no_grad():
        out = pattern(name, causal)(q, k, v)
    assert out.shape == q.shape and out.dtype == q.dtype and torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_a_query_sees_exactly_the_keys_its_mask_allows(name: str) -> None:
    """Changing value j changes output i if and only if ``allowed(i, j)`` (causal included)."""
    p = pattern(name)
    mask = causal_mask(p)
    assert mask.shape == (S, S) and mask.dtype == torch.bool
    assert not mask.triu(1).any(), "a decoder pattern must never allow a later key"
    assert mask.diagonal().all(), "every query sees its own key"
    q, k, v = qkv()
    with torch.no_grad():
        base = p(q, k, v)
        for j in range(S):
            moved = v.clone()
            moved[:, :, j] += 10.0
            changed = (p(q, k, moved) - base).abs().amax(dim=(0, 1, 3)) > 1e-4
            assert torch.equal(changed, mask[:, j]), f"value {j} reaches queries {changed.nonzero().ravel().tolist()}"


@pytest.mark.parametrize("name", NAMES)
def test_a_key_value_pattern_is_softmax_attention_over_its_mask(name: str) -> None:
    """Matches the dense reference restricted to the mask; with a window as long as the sequence, the
    mask is the full causal one and the pattern is dense attention."""
    p = pattern(name)
    if not caches_keys(p):
        pytest.skip(f"{name} keeps a recurrent state, not keys and values: not softmax attention")
    q, k, v = qkv()
    with torch.no_grad():
        torch.testing.assert_close(p(q, k, v), softmax_reference(q, k, v, causal_mask(p)), atol=1e-5, rtol=1e-5)
        assert p.kept_fraction(S) == pytest.approx(float(causal_mask(p).float().mean()))
        if p.uses_window:
            wide = pattern(name, window=S)
            full = torch.ones(S, S, dtype=torch.bool).tril()
            assert torch.equal(causal_mask(wide), full)
            torch.testing.assert_close(wide(q, k, v), softmax_reference(q, k, v, full), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("prompt", [1, 6])
@pytest.mark.parametrize("name", NAMES)
def test_decoding_from_the_prefill_cache_equals_the_full_pass(name: str, prompt: int) -> None:
    p = pattern(name)
    q, k, v = qkv(seed=3)
    with torch.no_grad():
        full = p(q, k, v)
        out, cache = p.prefill(q[:, :, :prompt], k[:, :, :prompt], v[:, :, :prompt])
        parts = [out]
        for t in range(prompt, S):
            given = {f.name: getattr(cache, f.name).clone() for f in fields(cache)}
            out, new = p.step(q[:, :, t : t + 1], k[:, :, t : t + 1], v[:, :, t : t + 1], cache, t)
            for field, value in given.items():  # a step never writes into the cache it is given
                assert torch.equal(getattr(cache, field), value), f"step {t} changed the given cache's {field}"
            parts.append(out)
            cache = new
    torch.testing.assert_close(torch.cat(parts, dim=2), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_the_encoder_form_sees_later_keys(name: str) -> None:
    p = pattern(name, causal=False)
    q, k, v = qkv()
    moved = v.clone()
    moved[:, :, 1] += 10.0
    with torch.no_grad():
        assert not torch.allclose(p(q, k, v)[:, :, 0], p(q, k, moved)[:, :, 0], atol=1e-4)
    with pytest.raises(ValueError, match="causal"):
        p.prefill(q, k, v)
