"""Dynamic depth (``depth_capacity < 1``): the router's capacity holds token for token and causally, the
router learns, decoding equals the full pass, and FLOPs count the tokens actually routed."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from archbench import ATTENTION, Architecture, build
from archbench.latency.flops import count_flops, count_model_flops
from archbench.search_space.seed_modules import capacity_route
from tests.conformance.test_position_encodings import assert_decodes_as_the_full_pass, perturbed

VOCAB = 32


def tiny(**kw: object) -> Architecture:
    base: dict[str, object] = dict(depth=2, width=16, heads=2, vocab_size=VOCAB, max_seq_len=80, ffn_ratio=2.0)
    return Architecture(**{**base, "depth_capacity": 0.5, **kw})  # type: ignore[arg-type]


def greedy(wanted: list[bool], capacity: float) -> list[bool]:
    """The rule, one token at a time: through if wanted and the prefix is below capacity."""
    out, count = [], 0
    for t, w in enumerate(wanted):
        ok = w and count < int(capacity * (t + 1))
        count += ok
        out.append(ok)
    return out


@pytest.mark.parametrize("capacity", [0.125, 0.3, 0.5, 0.75])
def test_the_capacity_holds_token_for_token_and_equals_the_greedy_rule(capacity: float) -> None:
    g = torch.Generator().manual_seed(0)
    wanted = torch.rand(6, 50, generator=g) < torch.tensor([0.1, 0.4, 0.6, 0.9, 1.0, 0.0])[:, None]
    routed, after = capacity_route(wanted, 0, torch.zeros(6, dtype=torch.long), capacity)
    limit = torch.floor(torch.arange(1, 51, dtype=torch.float64) * capacity).long()
    assert (routed.long().cumsum(1) <= limit).all(), "a prefix went over capacity"
    assert not (routed & ~wanted).any(), "a token the router did not want went through"
    for row in range(6):
        assert routed[row].tolist() == greedy(wanted[row].tolist(), capacity)
    assert torch.equal(after, routed.sum(1))
    # token by token (as decoding does) the same decisions
    before = torch.zeros(6, dtype=torch.long)
    for t in range(50):
        step, before = capacity_route(wanted[:, t : t + 1], t, before, capacity)
        assert torch.equal(step[:, 0], routed[:, t])


def test_it_is_causal_and_the_router_learns() -> None:
    torch.manual_seed(0)
    model = build(tiny(depth=3)).train()
    idx = torch.randint(0, VOCAB, (4, 33), generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(10):
        opt.zero_grad()
        loss = F.cross_entropy(model(idx[:, :-1]).reshape(-1, VOCAB), idx[:, 1:].reshape(-1))
        loss.backward()
        for name, p in model.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} gets no gradient"
        first = first if first is not None else loss.item()
        opt.step()
    assert float(loss) < 0.8 * first
    model.eval()
    moved = idx.clone()
    moved[:, 20] = (moved[:, 20] + 1) % VOCAB
    with torch.no_grad():
        torch.testing.assert_close(model(moved[:, :-1])[:, :20], model(idx[:, :-1])[:, :20], atol=1e-6, rtol=0)


@pytest.mark.parametrize("attention", ATTENTION.names())
def test_decoding_64_tokens_equals_the_full_forward(attention: str) -> None:
    assert_decodes_as_the_full_pass(perturbed(tiny(attention=attention, window=8, kv_heads=1)), VOCAB, 64)


def test_flops_count_the_tokens_actually_routed() -> None:
    a = tiny(depth=3)
    torch.manual_seed(0)
    model = build(a).eval()
    idx = torch.randint(0, VOCAB, (1, 32))
    plain = a.replace(depth_capacity=1.0)

    def layer_flops(n: int) -> int:  # one layer on n tokens (linears, attention core), from the plain model
        return count_flops(plain.replace(depth=2), 1, n).total - count_flops(plain.replace(depth=1), 1, n).total

    sent: list[int] = []
    hooks = [r.register_forward_hook(lambda m, i, out: sent.append(int(out[0].sum()))) for r in model.trunk.routers]
    with torch.no_grad():
        counted = count_model_flops(model, idx).total
    for h in hooks:
        h.remove()
    assert len(sent) == 2 and all(0 < n < 32 for n in sent)
    routers = 2 * 32 * a.width * (a.depth - 1)
    expected = count_flops(plain.replace(depth=1), 1, 32).total + routers + sum(layer_flops(n) for n in sent)
    assert counted == expected
    with torch.no_grad():
        for router in model.trunk.routers:
            router.score.weight.zero_()  # equal scores: every token wanted, the capacity bound (half)
        bound = count_model_flops(model, idx).total
    assert bound == count_flops(a, 1, 32).total  # the meta count is that bound
    assert bound < count_flops(plain, 1, 32).total
