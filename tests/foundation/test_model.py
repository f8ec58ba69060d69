"""The model family: every residual type x attention pattern x position encoding, for real."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from archbench import Architecture, build
from archbench.search_space import attention, registries
from archbench.search_space.attention import BlockSparse, Linear, SlidingWindow, make_pattern
from archbench.search_space.model import POS_INIT_SCALE, DecoderLM, EncoderClassifier, count_params, sinusoids
from archbench.search_space.residual import DeepNet

RESIDUALS = registries.RESIDUALS.names()  # every registered residual type
PATTERNS = registries.ATTENTION.names()  # every registered attention pattern
POS = ["learned", "rope", "none"]
VOCAB, SEQ = 61, 24


def tiny(**kw: object) -> Architecture:
    base: dict[str, object] = dict(depth=2, width=32, heads=4, vocab_size=VOCAB, max_seq_len=32, ffn_ratio=2.0)
    base.update(kw)
    if registries.ATTENTION.meta(str(base.get("attention", "dense"))).get("uses_window") and "window" not in kw:
        base["window"] = 8
    return Architecture(**base)  # type: ignore[arg-type]


def lm_loss(model: torch.nn.Module, idx: torch.Tensor) -> torch.Tensor:
    logits = model(idx[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), idx[:, 1:].reshape(-1))


@pytest.mark.slow
@pytest.mark.parametrize(("residual", "attention", "pos"), list(itertools.product(RESIDUALS, PATTERNS, POS)))
def test_forward_backward_every_combination(residual: str, attention: str, pos: str) -> None:
    torch.manual_seed(0)
    arch = tiny(residual=residual, attention=attention, pos_encoding=pos, ffn_act="swiglu", norm="rmsnorm")
    model = build(arch)
    model.train()
    idx = torch.randint(0, VOCAB, (3, SEQ + 1))
    logits = model(idx[:, :-1])
    assert logits.shape == (3, SEQ, VOCAB)
    assert torch.isfinite(logits).all()
    # One optimizer step first: zero-initialised gates (ReZero) and low-rank factors (LAuReL) pass no
    # gradient to what they guard until they move; after a step every parameter must learn.
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    lm_loss(model, idx).backward()
    opt.step()
    opt.zero_grad()
    loss = lm_loss(model, idx)
    assert torch.isfinite(loss)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} gets no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name} gets a zero gradient"


@pytest.mark.slow
@pytest.mark.parametrize("attention", PATTERNS)
@pytest.mark.parametrize("residual", RESIDUALS)
def test_encoder_classifier(residual: str, attention: str) -> None:
    torch.manual_seed(0)
    model = build(tiny(residual=residual, attention=attention, pos_encoding="rope"), num_classes=10)
    assert isinstance(model, EncoderClassifier)
    idx = torch.randint(0, VOCAB, (4, SEQ))
    out = model(idx)
    assert out.shape == (4, 10) and torch.isfinite(out).all()
    F.cross_entropy(out, torch.arange(4)).backward()
    assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("attention", PATTERNS)
@pytest.mark.parametrize("residual", ["pre_ln", "value_residual", "denseformer"])
@pytest.mark.parametrize("grad", [False, True], ids=["inference", "training-path"])
def test_causal_every_pattern(attention: str, residual: str, grad: bool) -> None:
    """Changing a future token never changes earlier outputs (flex path and SDPA path alike)."""
    torch.manual_seed(1)
    model = build(tiny(attention=attention, residual=residual, pos_encoding="rope", depth=3)).eval()
    idx = torch.randint(0, VOCAB, (2, SEQ))
    changed = idx.clone()
    cut = 13
    changed[:, cut:] = (changed[:, cut:] + 7) % VOCAB
    with torch.set_grad_enabled(grad):
        if grad:
            model.trunk.wte.weight.requires_grad_(True)
        a, b = model(idx), model(changed)
    assert torch.allclose(a[:, :cut], b[:, :cut], atol=1e-5), "a future token changed a past output"
    assert not torch.allclose(a[:, cut:], b[:, cut:], atol=1e-3), "the changed tokens changed nothing"


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    return scores.masked_fill(~mask, float("-inf")).softmax(-1) @ v


@pytest.mark.slow
@pytest.mark.parametrize("cls", [SlidingWindow, BlockSparse])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize(("seq", "window"), [(64, 16), (96, 24), (50, 7)])
def test_flex_equals_dense_attention_with_the_same_mask(cls: type, causal: bool, seq: int, window: int) -> None:
    torch.manual_seed(2)
    q, k, v = (torch.randn(2, 3, seq, 16) for _ in range(3))
    pattern = cls(window, causal)
    mask = pattern.dense_mask(seq, q.device)
    with torch.no_grad():
        flex = attention._flex(q, k, v, pattern.block_mask(seq, q.device))  # FlexAttention with a block mask
        # Uncompiled on a CPU, inference takes the SDPA path (eager flex is a slow reference) ...
        assert not pattern.use_flex(q, k, v)
        inference = pattern(q, k, v)
        with attention.flex_compile_mode(True):  # ... and compiled, flex itself
            assert pattern.use_flex(q, k, v)
    sdpa = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    ref = naive_attention(q, k, v, mask)
    assert torch.allclose(flex, sdpa, atol=1e-5)
    assert torch.allclose(flex, ref, atol=1e-5)
    assert torch.allclose(inference, flex, atol=1e-5)
    # The training path (gradients on CPU) runs the same mask through SDPA and agrees.
    qg = q.clone().requires_grad_(True)
    assert not pattern.use_flex(qg, k, v)
    with attention.flex_compile_mode(True):
        assert not pattern.use_flex(qg, k, v)  # compiled or not: flex has no backward on a CPU
    assert torch.allclose(pattern(qg, k, v), flex, atol=1e-5)


def test_masks_are_the_documented_patterns() -> None:
    sw = SlidingWindow(3, True).dense_mask(6, torch.device("cpu")).int()
    assert sw.tolist() == [
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [0, 1, 1, 1, 0, 0],
        [0, 0, 1, 1, 1, 0],
        [0, 0, 0, 1, 1, 1],
    ]
    bs = BlockSparse(2, True).dense_mask(8, torch.device("cpu")).int()
    # Query 6 (block 3) sees block 0 (global), block 2 (previous) and itself in block 3; not block 1.
    assert bs[6].tolist() == [1, 1, 0, 0, 1, 1, 1, 0]
    enc = SlidingWindow(2, False).dense_mask(4, torch.device("cpu")).int()
    assert enc.tolist() == [[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]]


def test_block_masks_skip_work() -> None:
    """The FlexAttention block mask really drops blocks (that is where the saving comes from)."""
    bm = SlidingWindow(128, True).block_mask(2048, torch.device("cpu"))
    assert bm.sparsity() > 85.0
    bs = BlockSparse(128, True).block_mask(2048, torch.device("cpu"))
    assert bs.sparsity() > 75.0
    assert SlidingWindow(128, True).kept_fraction(2048) < 0.07
    assert make_pattern("dense", 0, True).kept_fraction(2048) == pytest.approx(2049 / 4096)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("seq", [1, 5, 64, 100, 130])
def test_linear_attention_matches_the_quadratic_reference(causal: bool, seq: int) -> None:
    torch.manual_seed(3)
    q, k, v = (torch.randn(2, 2, seq, 8, dtype=torch.float64) for _ in range(3))
    out = Linear(0, causal)(q, k, v)
    fq, fk = F.elu(q) + 1, F.elu(k) + 1
    scores = fq @ fk.transpose(-1, -2)
    if causal:
        scores = scores * torch.ones(seq, seq, dtype=torch.float64).tril()
    ref = (scores @ v) / (scores.sum(-1, keepdim=True) + Linear.eps)
    assert torch.allclose(out.double(), ref, atol=1e-5)


def test_gpt2_small_parameter_count() -> None:
    gpt2 = Architecture(depth=12, width=768, heads=12, vocab_size=50257, max_seq_len=1024, ffn_ratio=4.0)
    with torch.device("meta"):
        model = build(gpt2)
    assert count_params(model) == 124_439_808
    with torch.device("meta"):
        untied = build(gpt2.replace(tie_embeddings=False))
    assert count_params(untied) == 124_439_808 + 50257 * 768


def test_billion_parameter_shape_builds_on_meta() -> None:
    arch = Architecture(
        depth=48, width=4096, heads=32, ffn_ratio=4.0, vocab_size=50304, max_seq_len=4096,
        pos_encoding="rope", norm="rmsnorm", bias=False, ffn_act="swiglu", tie_embeddings=False,
    )  # fmt: skip
    with torch.device("meta"):
        model = build(arch)
    w, h = 4096, 16384
    per_layer = 4 * w * w + 3 * w * h + 2 * w
    assert count_params(model) == 48 * per_layer + 2 * 50304 * w + w
    assert next(model.parameters()).is_meta


@pytest.mark.parametrize("act", ["gelu", "swiglu"])
@pytest.mark.parametrize("ratio", [1.0, 8 / 3, 3.7])
def test_ffn_hidden_and_head_split(act: str, ratio: float) -> None:
    arch = tiny(width=48, heads=3, ffn_act=act, ffn_ratio=ratio)
    model = build(arch)
    ffn = model.trunk.blocks[0].ffn
    assert ffn.fc.out_features == round(ratio * 48) == ffn.proj.in_features
    assert (ffn.gate is not None) == (act == "swiglu")
    attn = model.trunk.blocks[0].attn
    assert attn.heads * attn.head_dim == 48 and attn.head_dim == 16


def test_weight_sharing_cycles_blocks_over_depth() -> None:
    shared = build(tiny(depth=6, unique_layers=2))
    unshared = build(tiny(depth=6))
    one = build(tiny(depth=2))
    assert len(shared.trunk.blocks) == 2 and len(unshared.trunk.blocks) == 6
    assert count_params(shared) == count_params(one)
    assert count_params(unshared) > count_params(shared)
    # Shared weights do compute depth 6: the output differs from running the two blocks once.
    one.load_state_dict(shared.state_dict(), strict=False)
    idx = torch.randint(0, VOCAB, (1, 8))
    with torch.no_grad():
        assert not torch.allclose(shared.eval()(idx), one.eval()(idx))


def test_per_depth_parameters_stay_per_layer_under_sharing() -> None:
    dense = build(tiny(depth=4, unique_layers=1, residual="denseformer"))
    assert len(dense.trunk.dwa) == 4 and dense.trunk.dwa[3].shape == (5,)
    vr = build(tiny(depth=4, unique_layers=1, residual="value_residual"))
    assert vr.trunk.value_mix.shape == (3, 2)


def test_drop_path_is_stochastic_in_training_only() -> None:
    torch.manual_seed(4)
    model = build(tiny(depth=4, drop_path=0.5))
    idx = torch.randint(0, VOCAB, (8, 16))
    model.train()
    outs = [model(idx) for _ in range(3)]
    assert not torch.allclose(outs[0], outs[1])
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(idx), model(idx))
    assert model.trunk.drop_rate(0) == 0.0 and model.trunk.drop_rate(3) == pytest.approx(0.5)


def test_residual_specific_initialisation() -> None:
    torch.manual_seed(5)
    rezero = build(tiny(residual="rezero", depth=3))
    gates = [m.gate for m in rezero.modules() if hasattr(m, "gate") and isinstance(m.gate, torch.nn.Parameter)]
    assert gates and all(g.item() == 0.0 for g in gates)
    # At init a ReZero trunk is the identity: logits depend on the embedding only.
    idx = torch.randint(0, VOCAB, (2, 8))
    with torch.no_grad():
        expected = rezero.lm_head(rezero.trunk.norm_f(rezero.trunk.wte(idx) + rezero.trunk.wpe(torch.arange(8))))
        assert torch.allclose(rezero(idx), expected, atol=1e-6)
    arch = tiny(residual="deepnet", depth=12, width=256, heads=4)
    model = build(arch)
    alpha, beta = DeepNet.constants(12)
    assert alpha == pytest.approx(24**0.25) and beta == pytest.approx(96**-0.25)
    block = model.trunk.blocks[0]
    assert block.attn_conn.alpha == pytest.approx(alpha)
    xavier = math.sqrt(2 / (256 + 256))
    v_std = block.attn.qkv.weight[512:].std().item()
    q_std = block.attn.qkv.weight[:256].std().item()
    assert v_std == pytest.approx(beta * xavier, rel=0.1)
    assert q_std == pytest.approx(xavier, rel=0.1)
    laurel = build(tiny(residual="laurel"))
    assert laurel.trunk.blocks[0].attn_conn.up.weight.abs().sum() == 0


def test_post_ln_and_deepnet_have_no_final_norm_but_pre_ln_does() -> None:
    assert build(tiny(residual="post_ln")).trunk.norm_f is None
    assert build(tiny(residual="deepnet")).trunk.norm_f is None
    assert isinstance(build(tiny(residual="pre_ln", norm="rmsnorm")).trunk.norm_f, torch.nn.RMSNorm)


def test_bias_field_removes_every_bias() -> None:
    model = build(tiny(bias=False))
    assert not [n for n, _ in model.named_parameters() if n.endswith(".bias")]


def test_sequence_longer_than_max_is_refused() -> None:
    model = build(tiny())
    with pytest.raises(ValueError, match="exceeds max_seq_len=32"):
        model(torch.zeros(1, 33, dtype=torch.long))


def test_build_accepts_a_mapping_and_checks_num_classes() -> None:
    model = build(tiny().to_dict())
    assert isinstance(model, DecoderLM)
    with pytest.raises(ValueError, match="num_classes"):
        build(tiny(), num_classes=1)


@pytest.mark.slow
def test_compiled_flex_matches_eager() -> None:
    """The compiled FlexAttention kernel (the one that saves work) gives the uncompiled path's numbers."""

    torch.manual_seed(6)
    q, k, v = (torch.randn(1, 2, 128, 16) for _ in range(3))
    pattern = SlidingWindow(32, True)
    with torch.no_grad():
        attention.set_flex_compile(False)
        eager = pattern(q, k, v)
        attention.set_flex_compile(True)
        try:
            compiled = pattern(q, k, v)
        finally:
            attention.set_flex_compile(None)
    assert torch.allclose(eager, compiled, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("attention", PATTERNS)
def test_gpu_training_step_every_pattern(attention: str) -> None:
    torch.manual_seed(7)
    model = build(tiny(attention=attention, width=64, heads=4)).cuda()
    idx = torch.randint(0, VOCAB, (2, SEQ + 1), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = lm_loss(model, idx)
    loss.backward()  # FlexAttention backward runs on CUDA
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("attention", PATTERNS)
@pytest.mark.parametrize("kv_heads", [1, 2])
def test_grouped_query_attention_every_pattern(attention: str, kv_heads: int) -> None:
    """kv_heads < heads: forward/backward, causal, and flex = SDPA = a naive reference with repeated kv."""
    torch.manual_seed(8)
    arch = tiny(attention=attention, heads=4, kv_heads=kv_heads, residual="value_residual", pos_encoding="rope")
    model = build(arch)
    attn = model.trunk.blocks[0].attn
    assert attn.qkv.out_features == 32 + 2 * kv_heads * 8  # q: width; k, v: kv_heads x head_dim each
    idx = torch.randint(0, VOCAB, (2, SEQ + 1))
    lm_loss(model, idx).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    changed = idx.clone()
    changed[:, 13:] = (changed[:, 13:] + 5) % VOCAB
    with torch.no_grad():
        a, b = model(idx[:, :-1]), model(changed[:, :-1])
    assert torch.allclose(a[:, :13], b[:, :13], atol=1e-5)
    q = torch.randn(2, 4, 32, 8)
    k, v = torch.randn(2, kv_heads, 32, 8), torch.randn(2, kv_heads, 32, 8)
    pattern = make_pattern(attention, 8 if attention in ("sliding_window", "block_sparse") else 0, True)
    group = 4 // kv_heads
    with torch.no_grad():
        grouped = pattern(q, k, v)
        repeated = pattern(q, k.repeat_interleave(group, 1), v.repeat_interleave(group, 1))
    assert torch.allclose(grouped, repeated, atol=1e-5)


def test_llama3_8b_and_mistral_7b_build_with_their_published_parameter_counts() -> None:
    llama3_8b = Architecture(
        depth=32, width=4096, heads=32, kv_heads=8, ffn_ratio=3.5, ffn_act="swiglu", norm="rmsnorm",
        pos_encoding="rope", vocab_size=128256, max_seq_len=8192, tie_embeddings=False, bias=False,
    )  # fmt: skip
    mistral_7b = Architecture(
        depth=32, width=4096, heads=32, kv_heads=8, ffn_ratio=3.5, ffn_act="swiglu", norm="rmsnorm",
        pos_encoding="rope", vocab_size=32000, max_seq_len=32768, tie_embeddings=False, bias=False,
        attention="sliding_window", window=4096,
    )  # fmt: skip
    with torch.device("meta"):
        assert count_params(build(llama3_8b)) == 8_030_261_248
        assert count_params(build(mistral_7b)) == 7_241_732_096


def test_multi_head_ids_are_unchanged_by_the_kv_heads_field() -> None:
    assert Architecture(heads=4, kv_heads=4).arch_id == Architecture().arch_id == "7af87ff765bc"
    assert Architecture(heads=4, kv_heads=2).arch_id != Architecture().arch_id
    assert Architecture().replace(heads=8).kv_heads == 8  # multi-head stays multi-head


def test_learned_positions_start_from_the_sinusoidal_table_and_stay_learnable() -> None:
    model = build(tiny(pos_encoding="learned", width=48, max_seq_len=20))
    wpe = model.trunk.wpe.weight
    table = sinusoids(20, 48)
    assert torch.allclose(wpe, POS_INIT_SCALE * table)
    pos = torch.arange(20.0)[:, None]
    assert torch.allclose(table[:, 2], torch.sin(pos[:, 0] / 10000 ** (2 / 48)))  # Vaswani et al.'s frequencies
    assert torch.allclose(table[:, 3], torch.cos(pos[:, 0] / 10000 ** (2 / 48)))
    assert torch.equal(sinusoids(4, 5)[0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0]))  # odd widths work
    assert wpe.requires_grad
    lm_loss(model, torch.randint(0, VOCAB, (2, 12))).backward()
    assert wpe.grad is not None and wpe.grad[:11].abs().sum() > 0
    with torch.device("meta"):  # building still reads no values
        assert build(tiny(pos_encoding="learned")).trunk.wpe.weight.is_meta
