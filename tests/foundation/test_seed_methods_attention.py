"""The defining property of each attention-side seed method: Primer's convolution is causal and width 3,
relaxed recursion at rank 0 is plain sharing (and its adapters start equal to it), the relative bias
depends on the distance alone and reaches FlexAttention as the same numbers as SDPA."""

from __future__ import annotations

import pytest
import torch

from archbench import Architecture, build
from archbench.errors import ArchitectureError, ConfigError
from archbench.interop.hf import hf_config
from archbench.latency.flops import count_flops
from archbench.search_space import attention
from archbench.search_space.seed_modules import RelativeBias
from tests.conformance.test_position_encodings import assert_decodes_as_the_full_pass

TINY: dict[str, object] = dict(depth=2, width=16, heads=2, vocab_size=32, max_seq_len=32, ffn_ratio=2.0)


def tiny(**kw: object) -> Architecture:
    return Architecture(**{**TINY, **kw})  # type: ignore[arg-type]


def test_new_fields_at_their_defaults_keep_every_arch_id_and_validate_in_one_line() -> None:
    assert Architecture().arch_id == "7af87ff765bc"  # as before the fields existed
    assert Architecture(qkv_conv=False, recursion_rank=0).arch_id == "7af87ff765bc"
    ids = {tiny().arch_id, tiny(qkv_conv=True).arch_id, tiny(pos_encoding="relative").arch_id}
    ids |= {tiny(unique_layers=1).arch_id, tiny(unique_layers=1, recursion_rank=4).arch_id}
    assert len(ids) == 5
    for bad, match in [
        (dict(qkv_conv="yes"), "qkv_conv.*true or false"),
        (dict(recursion_rank=-1), "recursion_rank.*integer >= 0"),
        (dict(recursion_rank=4), "recursion_rank.*needs shared layers"),
        (dict(pos_encoding="relative", attention="linear"), "pos_encoding.*linear has none"),
    ]:
        with pytest.raises(ArchitectureError, match=match) as err:
            tiny(**bad)
        assert "\n" not in str(err.value)
    text = tiny(unique_layers=1, recursion_rank=4, qkv_conv=True, pos_encoding="relative").describe()
    assert "lora4" in text and "qkv_conv" in text and "relative" in text


def test_the_qkv_convolution_is_causal_width_3_and_per_channel() -> None:
    torch.manual_seed(0)
    attn = build(tiny(qkv_conv=True)).trunk.blocks[0].attn
    with torch.no_grad():
        attn.conv.weight.normal_()
        h = torch.randn(2, 10, attn.conv.in_channels)
        base, tail = attn.convolve(h, None)
        torch.testing.assert_close(tail, h[:, -2:])
        moved = h.clone()
        moved[:, 4, 3] += 1.0  # one channel of one token
        diff = (attn.convolve(moved, None)[0] - base).abs()
    assert torch.equal(diff.amax(dim=(0, 2)) > 0, (torch.arange(10) >= 4) & (torch.arange(10) <= 6))
    assert torch.equal(diff.amax(dim=(0, 1)) > 0, torch.arange(h.shape[-1]) == 3)


def test_the_convolution_starts_as_the_identity_and_its_flops_are_counted() -> None:
    plain, conv = tiny(), tiny(qkv_conv=True)
    torch.manual_seed(0)
    a = build(plain).eval()
    torch.manual_seed(0)
    b = build(conv).eval()
    b.load_state_dict(a.state_dict(), strict=False)
    idx = torch.randint(0, 32, (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(b(idx), a(idx), atol=1e-6, rtol=0)  # the conv kernel's rounding only
    channels = conv.width * 3  # q, k and v (multi-head)
    extra = count_flops(conv, 1, 16).total - count_flops(plain, 1, 16).total
    assert extra == conv.depth * 2 * 16 * channels * 3


@pytest.mark.parametrize("ffn_act", ["gelu", "swiglu"])
def test_rank_0_relaxed_recursion_is_plain_sharing_and_a_fresh_adapter_changes_nothing(ffn_act: str) -> None:
    shared = tiny(unique_layers=1, ffn_act=ffn_act)
    assert tiny(unique_layers=1, ffn_act=ffn_act, recursion_rank=0) == shared
    torch.manual_seed(0)
    plain = build(shared).eval()
    torch.manual_seed(0)
    again = build(tiny(unique_layers=1, ffn_act=ffn_act, recursion_rank=0)).eval()
    assert dict(plain.named_parameters()).keys() == dict(again.named_parameters()).keys()
    relaxed = build(tiny(unique_layers=1, ffn_act=ffn_act, recursion_rank=3)).eval()
    missing = relaxed.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("trunk.adapters.") for k in missing)
    idx = torch.randint(0, 32, (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(again(idx), plain(idx), atol=0, rtol=0)
        torch.testing.assert_close(relaxed(idx), plain(idx), atol=0, rtol=0)  # B = 0: the shared block
        relaxed.trunk.adapters[1].fc.b.normal_()  # depth 1 alone now differs from its shared block
        assert not torch.allclose(relaxed(idx), plain(idx))
    extra = sum(p.numel() for p in relaxed.trunk.adapters.parameters())
    w, hid, r = 16, 32, 3
    per_depth = r * ((w + 3 * w) + (w + w) + (w + hid) * (2 if ffn_act == "swiglu" else 1) + (hid + w))
    assert extra == shared.depth * per_depth


def test_the_relative_bias_depends_on_the_clipped_distance_alone() -> None:
    bias = RelativeBias(heads=2, max_seq_len=300)
    with torch.no_grad():
        bias.table.normal_()
    pos = torch.arange(200)
    b = bias(pos, pos)
    assert b.shape == (2, 200, 200)
    torch.testing.assert_close(b[:, 10, 3], b[:, 50, 43])  # same distance, same bias
    torch.testing.assert_close(b[:, 199, 0], b[:, 150, 0])  # beyond 128: clipped
    assert not torch.equal(b[:, 10, 3], b[:, 10, 4])


@pytest.mark.parametrize("name", ["sliding_window", "block_sparse"])
def test_flex_gets_the_relative_bias_as_the_same_numbers_as_sdpa(name: str) -> None:
    bias = RelativeBias(heads=4, max_seq_len=64)
    with torch.no_grad():
        bias.table.normal_()
    p = attention.make_pattern(name, 8, True)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 4, 32, 8, generator=g) for _ in range(3))
    with torch.no_grad():
        sdpa = p(q, k, v, bias)
        flex = attention._flex(q, k, v, p.block_mask(32, q.device), bias.score_mod())
    torch.testing.assert_close(flex, sdpa, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "kw", [dict(qkv_conv=True), dict(pos_encoding="relative"), dict(unique_layers=1, recursion_rank=2)]
)
def test_export_refuses_what_no_target_expresses_in_one_line(kw: dict[str, object]) -> None:
    pytest.importorskip("transformers")
    a = Architecture(**{**TINY, "norm": "rmsnorm", "ffn_act": "swiglu", "pos_encoding": "rope", "bias": False, **kw})
    with pytest.raises(ConfigError, match=next(iter(kw))) as err:
        hf_config(a)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("attention_name", ["sliding_window", "linear"])
def test_all_three_together_train_and_decode_as_the_full_pass(attention_name: str) -> None:
    pos = "relative" if attention_name != "linear" else "rope"
    a = tiny(attention=attention_name, window=4, pos_encoding=pos, qkv_conv=True, unique_layers=1, recursion_rank=2)
    torch.manual_seed(0)
    model = build(a).train()
    idx = torch.randint(0, 32, (2, 13), generator=torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):  # after one step the zero-initialised LoRA B has moved, so A learns too
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(idx[:, :-1]).reshape(-1, 32), idx[:, 1:].reshape(-1)).backward()
        opt.step()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} gets no gradient"
    assert_decodes_as_the_full_pass(model.eval(), 32, 20)
