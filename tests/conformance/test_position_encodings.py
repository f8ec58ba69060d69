"""The contract of a position encoding, run on every value of ``POS_ENCODINGS``: registering one tests it.

Each encoding runs with dense attention, and an encoding that enters the attention scores (relative: a
bias every pattern must add, in its full pass and its decode step alike) with every attention pattern;
the rest reach the patterns as plain q, k and v, which the attention conformance suite covers.

Each combination either builds or is refused in one line at construction; one that builds is causal,
trains (every parameter gets a gradient), decodes from a cache exactly as the full forward pass computes
for 64 tokens, and has its FLOPs counted.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from archbench import ATTENTION, Architecture, build
from archbench.errors import ArchitectureError
from archbench.latency.flops import count_flops
from archbench.search_space.architecture import POS_ENCODINGS

VOCAB, WINDOW, TOKENS = 32, 8, 64
SCORE_ENCODINGS = ("relative",)  # encodings that the attention patterns themselves apply
PAIRS = [(pos, att) for pos in POS_ENCODINGS for att in ATTENTION.names() if att == "dense" or pos in SCORE_ENCODINGS]


def arch(pos: str, attention: str) -> Architecture:
    """A tiny decoder with ``pos`` and ``attention``; skips (after checking the one-line refusal) a
    combination the Architecture refuses."""
    kw: dict[str, object] = dict(depth=1, width=16, heads=2, kv_heads=1, vocab_size=VOCAB, max_seq_len=TOKENS + 8)
    try:
        return Architecture(pos_encoding=pos, attention=attention, window=WINDOW, **kw)  # type: ignore[arg-type]
    except ArchitectureError as exc:
        assert "\n" not in str(exc) and pos in str(exc) and attention in str(exc)
        pytest.skip(f"{pos} with {attention} is refused: {exc}")


def perturbed(a: Architecture) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build(a).eval()
    with torch.no_grad():  # off the initialisation, so that zero-initialised biases matter
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def assert_decodes_as_the_full_pass(model: torch.nn.Module, vocab: int, tokens: int = TOKENS) -> None:
    """Greedy decoding of ``tokens`` after a 3-token prompt (batch 2) chose from the full pass's logits."""
    prompt = torch.randint(0, vocab, (2, 3), generator=torch.Generator().manual_seed(1))
    out, chosen = model.generate(prompt, tokens)
    with torch.no_grad():
        full = model(out[:, :-1])[:, 2:]
    torch.testing.assert_close(chosen, full, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("pos", "attention"), PAIRS)
def test_decoding_64_tokens_equals_the_full_forward(pos: str, attention: str) -> None:
    assert_decodes_as_the_full_pass(perturbed(arch(pos, attention)), VOCAB)


@pytest.mark.parametrize(("pos", "attention"), PAIRS)
def test_it_is_causal_trains_and_counts_flops(pos: str, attention: str) -> None:
    a = arch(pos, attention)
    model = perturbed(a).train()
    idx = torch.randint(0, VOCAB, (2, 17), generator=torch.Generator().manual_seed(2))
    logits = model(idx[:, :-1])
    F.cross_entropy(logits.reshape(-1, VOCAB), idx[:, 1:].reshape(-1)).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} gets no gradient"
    moved = idx.clone()
    moved[:, 9] = (moved[:, 9] + 1) % VOCAB
    with torch.no_grad():
        torch.testing.assert_close(model(moved[:, :-1])[:, :9], logits[:, :9].detach(), atol=1e-6, rtol=0)
    assert count_flops(a, batch=1, seq_len=16).total > 0


def test_relative_positions_are_refused_with_a_pattern_without_scores() -> None:
    for name in ATTENTION.names():
        if not ATTENTION.meta(name).get("scores", True):
            with pytest.raises(ArchitectureError, match=f"pos_encoding.*{name} has none"):
                Architecture(pos_encoding="relative", attention=name)
