"""The defining property of each second-round seed method on the residual side, one test each: Primer's
squared ReLU, LayerScale's initial scale, LayerNorm Scaling's 1/sqrt(l), Depth-µP's 1/sqrt(depth) on every
branch and its learning-rate rule, and DeepCrossAttention with constant weights equal to DenseFormer.
(The contract every residual type meets is tests/conformance/test_residual_types.py.)"""

from __future__ import annotations

import math

import pytest
import torch

from archbench import Architecture, build
from archbench.evaluators.trainer import make_optimizer, set_lr
from archbench.interop.table import HF_TARGETS, LITGPT, NotExpressible, choose
from archbench.latency.flops import count_flops
from archbench.search_space.model import FeedForward
from archbench.search_space.residual import LayerScale
from archbench.train_config import TrainConfig

VOCAB = 61
NEW_RESIDUALS = ("layerscale", "ln_scaling", "depth_mup", "dca")


def tiny(**kw: object) -> Architecture:
    base: dict[str, object] = dict(depth=3, width=32, heads=4, vocab_size=VOCAB, max_seq_len=32, ffn_ratio=2.0)
    return Architecture(**{**base, **kw})  # type: ignore[arg-type]


def tokens(b: int = 2, s: int = 12) -> torch.Tensor:
    return torch.randint(0, VOCAB, (b, s), generator=torch.Generator().manual_seed(0))


def test_relu2_is_the_square_of_relu_in_the_ffn() -> None:
    torch.manual_seed(0)
    ffn = FeedForward(tiny(ffn_act="relu2"))
    x = torch.randn(2, 5, 32)
    h = ffn.fc(x)
    torch.testing.assert_close(ffn(x), ffn.proj(torch.where(h > 0, h * h, torch.zeros_like(h))))
    assert ffn.gate is None  # two matrices, as gelu: the same parameters at the same ratio
    assert sum(p.numel() for p in ffn.parameters()) == sum(p.numel() for p in FeedForward(tiny()).parameters())


def test_layerscale_starts_at_caits_epsilon_for_the_depth() -> None:
    assert [LayerScale.init_value(d) for d in (1, 18, 19, 24, 25, 48)] == [0.1, 0.1, 1e-5, 1e-5, 1e-6, 1e-6]
    for depth in (3, 20, 25):
        with torch.device("meta"):
            model = build(tiny(residual="layerscale", depth=depth))
        scales = [m.scale for m in model.modules() if type(m).__name__ == "LayerScaleConnection"]
        assert len(scales) == 2 * depth and all(s.shape == (32,) for s in scales)
    model = build(tiny(residual="layerscale"))
    for block in model.trunk.blocks:
        for conn in (block.attn_conn, block.ffn_conn):
            assert torch.equal(conn.scale, torch.full((32,), 0.1))
            x = torch.randn(2, 4, 32)
            torch.testing.assert_close(conn(x, torch.tanh, 0.0), x + 0.1 * torch.tanh(conn.norm(x)))


@pytest.mark.parametrize("unique_layers", [None, 1])
def test_ln_scaling_scales_the_normed_input_of_layer_l_by_one_over_sqrt_l(unique_layers: int | None) -> None:
    torch.manual_seed(0)
    model = build(tiny(residual="ln_scaling", depth=4, unique_layers=unique_layers)).eval()
    seen: dict[str, list[torch.Tensor]] = {"norm": [], "attn": [], "ffn_norm": [], "ffn": []}
    for block in model.trunk.blocks:
        block.attn_conn.norm.register_forward_hook(lambda m, i, o: seen["norm"].append(o))
        block.attn.register_forward_pre_hook(lambda m, a: seen["attn"].append(a[0]))
        block.ffn_conn.norm.register_forward_hook(lambda m, i, o: seen["ffn_norm"].append(o))
        block.ffn.register_forward_pre_hook(lambda m, a: seen["ffn"].append(a[0]))
    with torch.no_grad():
        model(tokens())
    assert len(seen["attn"]) == 4  # in the order of the layers, shared blocks or not
    for layer in range(4):
        for norm, sub in (("norm", "attn"), ("ffn_norm", "ffn")):
            torch.testing.assert_close(seen[sub][layer], seen[norm][layer] / math.sqrt(layer + 1))


def test_depth_mup_scales_every_branch_by_one_over_sqrt_depth_and_the_blocks_lr_too() -> None:
    depth = 4
    model = build(tiny(residual="depth_mup", depth=depth))
    x = torch.randn(2, 4, 32)
    for block in model.trunk.blocks:
        assert block.attn.proj.weight.std() > 0.015  # depth-independent init: the multiplier scales instead
        for conn in (block.attn_conn, block.ffn_conn):
            torch.testing.assert_close(conn(x, torch.tanh, 0.0), x + torch.tanh(conn.norm(x)) / math.sqrt(depth))
    opt = make_optimizer(model, TrainConfig(), torch.device("cpu"))
    set_lr(opt, 1e-3)
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    block_ids = {id(p) for p in model.trunk.blocks.parameters()}
    assert len(lr_of) == len(list(model.parameters()))
    for p in model.parameters():
        want = 1e-3 / math.sqrt(depth) if id(p) in block_ids else 1e-3
        assert lr_of[id(p)] == pytest.approx(want)
    # Every other residual type keeps one rate: the same two groups as before.
    plain = make_optimizer(build(tiny()), TrainConfig(), torch.device("cpu"))
    assert [g["lr_scale"] for g in plain.param_groups] == [1.0, 1.0]


def test_dca_with_constant_weights_is_denseformers_average_and_reads_the_input_otherwise() -> None:
    torch.manual_seed(0)
    dense = build(tiny(residual="denseformer")).eval()
    torch.manual_seed(0)
    dca = build(tiny(residual="dca")).eval()
    with torch.no_grad():  # the same non-trivial DWA weights in both
        for w in dense.trunk.dwa:
            w.add_(torch.rand_like(w) * 0.5)
    missing = dca.load_state_dict(dense.state_dict(), strict=False).missing_keys
    assert sorted(missing) == [f"trunk.dca.{i}" for i in range(3)]
    idx = tokens()
    with torch.no_grad():
        torch.testing.assert_close(dca(idx), dense(idx))
        for g in dca.trunk.dca:
            g.normal_(0.0, 0.5)
        moved = dca(idx)
    assert not torch.allclose(moved, dense(idx), atol=1e-3)
    # Input-dependent per token: the weights of one token never read another's (so still causal).
    with torch.no_grad():
        longer = torch.cat([idx, tokens(2, 3)], dim=1)
        torch.testing.assert_close(dca(longer)[:, : idx.shape[1]], moved)


def test_dca_flops_count_the_weight_reading() -> None:
    b, s, w, depth = 2, 16, 32, 3
    extra = count_flops(tiny(residual="dca"), b, s).total - count_flops(tiny(residual="denseformer"), b, s).total
    assert extra == sum(2 * b * s * w * (layer + 2) for layer in range(depth))
    assert count_flops(tiny(ffn_act="relu2"), b, s).total == count_flops(tiny(), b, s).total


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"ffn_act": "relu2"}, "ffn_act='relu2'"),
        ({"residual": "layerscale"}, "residual='layerscale'"),
        ({"residual": "ln_scaling"}, "residual='ln_scaling'"),
        ({"residual": "depth_mup"}, "residual='depth_mup'"),
        ({"residual": "dca"}, "residual='dca'"),
    ],
)
def test_export_refuses_the_new_values_in_one_line(change: dict[str, str], why: str) -> None:
    gpt2 = Architecture(depth=2, width=32, heads=4, **change)
    with pytest.raises(NotExpressible, match=why) as hf:
        choose(gpt2, list(HF_TARGETS.values()), "transformers")
    assert "\n" not in str(hf.value)
    litgpt = Architecture(depth=2, width=32, heads=4, pos_encoding="rope", tie_embeddings=False, quant="fp32", **change)
    with pytest.raises(NotExpressible, match=why):
        choose(litgpt, [LITGPT], "LitGPT")


def test_old_ids_do_not_move_and_the_new_values_are_new_ids() -> None:
    """New values of existing fields only: an architecture that does not use them keeps its id."""
    assert Architecture().arch_id == "7af87ff765bc"  # pinned in tests/foundation/test_architecture.py too
    news = [Architecture(ffn_act="relu2"), *(Architecture(residual=r) for r in NEW_RESIDUALS)]
    assert len({a.arch_id for a in news} | {"7af87ff765bc"}) == len(news) + 1
