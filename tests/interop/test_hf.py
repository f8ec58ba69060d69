"""Export to transformers and import back: configs, parameter counts, logits, refusals (one line each)."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from transformers import AutoModelForCausalLM

from archbench.interop.hf import from_hf, hf_config, hf_target
from archbench.interop.hf_model import hf_model, hf_state_dict, write_hf_dir
from archbench.interop.table import HF_TARGETS, TARGETS, NotExpressible
from archbench.search_space import Architecture
from archbench.search_space.model import count_params
from tests.interop.conftest import EXACT, MORE_EXACT, VARIANTS, saved, tokens, trained_like

EXPORTING = [name for name, t in HF_TARGETS.items() if t.exports]


def test_every_target_has_a_shape() -> None:
    assert set(EXACT) == set(TARGETS)
    for name, arch in EXACT.items():
        if TARGETS[name].exports:
            assert TARGETS[name].misses(arch) == [], name
    for name, archs in MORE_EXACT.items():
        assert all(TARGETS[name].misses(a) == [] for a in archs), name


@pytest.mark.parametrize("name", EXPORTING)
def test_exported_config_builds_the_same_parameter_count(name: str) -> None:
    arch = EXACT[name]
    config = hf_config(arch)
    assert config.model_type == name
    model = AutoModelForCausalLM.from_config(config)
    assert sum(p.numel() for p in model.parameters()) == count_params(trained_like(arch))


@pytest.mark.parametrize("name", list(VARIANTS))
def test_mapped_weights_give_archbench_logits(name: str, tmp_path) -> None:
    arch = VARIANTS[name]
    model, weights = saved(arch, tmp_path)
    hf = hf_model(weights)
    assert type(hf).__name__.lower().startswith(hf_target(arch).name)
    idx = tokens(arch)
    with torch.no_grad():
        diff = (model(idx) - hf(idx).logits).abs().max().item()
    assert diff <= 1e-4, f"{name}: max |logits diff| {diff}"


@pytest.mark.parametrize("name", ["llama-gqa", "mistral-window", "ministral-every2", "gpt2", "starcoder2-window"])
def test_from_pretrained_on_an_exported_dir_gives_archbench_logits(name: str, tmp_path) -> None:
    arch = VARIANTS[name]
    model, weights = saved(arch, tmp_path, seed=3)
    files = write_hf_dir(arch, tmp_path / "hf", weights)
    assert {"config.json", "model.safetensors"} <= {f.name for f in files}
    loaded, info = AutoModelForCausalLM.from_pretrained(tmp_path / "hf", output_loading_info=True)
    assert not any(info.values()), info  # no missing, unexpected or mismatched weights
    idx = tokens(arch, seed=4)
    with torch.no_grad():
        assert (model(idx) - loaded.eval()(idx).logits).abs().max().item() <= 1e-4
    assert not list(tmp_path.glob(".hf*")), "no temporary directory left behind"


def test_the_weight_map_splits_grouped_qkv_rows() -> None:
    arch = VARIANTS["llama-gqa"]
    state = trained_like(arch).state_dict()
    mapped = hf_state_dict(arch, state)
    qkv = state["trunk.blocks.1.attn.qkv.weight"]
    kv = arch.kv_heads * arch.head_dim
    assert mapped["model.layers.1.self_attn.k_proj.weight"].shape == (kv, arch.width)
    assert torch.equal(mapped["model.layers.1.self_attn.v_proj.weight"], qkv[arch.width + kv :])
    gpt2 = VARIANTS["gpt2"]
    state = trained_like(gpt2).state_dict()
    mapped = hf_state_dict(gpt2, state)
    assert torch.equal(mapped["transformer.h.0.attn.c_attn.weight"], state["trunk.blocks.0.attn.qkv.weight"].t())
    assert "lm_head.weight" not in mapped  # tied: transformers ties it from the config


@pytest.mark.parametrize("name", list(VARIANTS))
def test_import_of_an_exported_config_gives_the_same_architecture(name: str) -> None:
    arch = VARIANTS[name]
    config = hf_config(arch)
    assert from_hf(config).arch.arch_id == arch.arch_id
    assert Architecture.from_hf(config.to_dict()) == arch
    plain = {k: v for k, v in config.to_dict().items() if k != "archbench"}  # the config keys alone
    imported = from_hf(plain)
    assert imported.arch.arch_id == arch.arch_id and imported.left_out == ()


def test_import_keeps_what_only_archbench_knows_through_its_key(tmp_path) -> None:
    arch = VARIANTS["llama-gqa"].replace(drop_path=0.1, ffn_ratio=2.7)  # 2.7 * 64 rounds to 173
    config = hf_config(arch)
    config.save_pretrained(tmp_path)
    assert from_hf(tmp_path).arch == arch
    assert from_hf(tmp_path / "config.json").arch == arch
    edited = json.loads((tmp_path / "config.json").read_text())
    edited["num_hidden_layers"] = 3  # the stored arch no longer says the same shape: the keys win
    assert from_hf(edited).arch.depth == 3


def test_bf16_exports_as_the_config_dtype_and_back() -> None:
    arch = VARIANTS["gpt2"].replace(quant="bf16")
    config = hf_config(arch)
    assert str(config.dtype).endswith("bfloat16")
    plain = {k: v for k, v in config.to_dict().items() if k != "archbench"}
    assert from_hf(plain).arch == arch


def _violations(arch: Architecture, field: str) -> list[Architecture]:
    """Valid architectures that differ from ``arch`` in ``field`` only (plus what the change needs)."""
    from archbench.search_space.architecture import FFN_ACTS, NORMS, POS_ENCODINGS, QUANTS
    from archbench.search_space.registries import ATTENTION, RESIDUALS

    domain = {
        "residual": RESIDUALS.names(),
        "attention": ATTENTION.names(),
        "norm": NORMS,
        "ffn_act": FFN_ACTS,
        "pos_encoding": POS_ENCODINGS,
        "quant": QUANTS,
        "bias": (True, False),
        "tie_embeddings": (True, False),
        "unique_layers": (1, arch.depth),
        "kv_heads": (1, 2, arch.heads),
        "global_every": (0, 1, arch.depth),
    }[field]
    out = []
    for value in domain:
        if value == getattr(arch, field):
            continue
        extra = {"window": 24} if field == "attention" and ATTENTION.meta(value)["uses_window"] else {}
        out.append(arch.replace(**{field: value}, **extra))
    return out


REFUSAL_ROWS = [(t, n) for t in TARGETS.values() if t.exports for n in t.needs]


@pytest.mark.parametrize(("target", "need"), REFUSAL_ROWS, ids=[f"{t.name}-{n.field}" for t, n in REFUSAL_ROWS])
def test_every_refusal_is_one_line_naming_the_field(target, need) -> None:
    """Each row of the table: an arch failing only it is refused in one line naming the field and value,
    or (for transformers) taken by another class that expresses it exactly."""
    bases = [EXACT[target.name], *MORE_EXACT.get(target.name, [])]
    broken = [a for base in bases for a in _violations(base, need.field) if target.misses(a) == [need]]
    assert broken, f"no valid architecture fails only {need.wants}"
    for arch in broken:
        if target.name == "litgpt":
            from archbench.interop.litgpt import litgpt_config

            with pytest.raises(NotExpressible) as exc:
                litgpt_config(arch)
        else:
            takers = [t for t in HF_TARGETS.values() if t.exports and not t.misses(arch)]
            if takers:
                assert hf_target(arch) is takers[0]
                continue
            with pytest.raises(NotExpressible) as exc:
                hf_config(arch)
        msg = str(exc.value)
        assert "\n" not in msg and f"{need.field}={getattr(arch, need.field)!r}" in msg, msg


@pytest.mark.parametrize(
    ("arch", "named"),
    [
        (Architecture(residual="deepnet"), "residual='deepnet'"),
        (Architecture(residual="rezero"), "residual='rezero'"),
        (Architecture(residual="value_residual"), "residual='value_residual'"),
        (Architecture(residual="denseformer"), "residual='denseformer'"),
        (Architecture(residual="laurel"), "residual='laurel'"),
        (Architecture(attention="block_sparse", window=16), "attention='block_sparse'"),
        (Architecture(attention="linear"), "attention='linear'"),
        (Architecture(unique_layers=2), "unique_layers=2"),
        (Architecture(quant="int8"), "quant='int8'"),
        (Architecture(pos_encoding="none"), "pos_encoding='none'"),
        (Architecture(residual="post_ln"), "residual='post_ln'"),
        (Architecture(bias=False), "bias=False"),
        (Architecture(attention="linear", global_every=2), "attention='linear'"),  # a hybrid of linear layers
        # Starcoder2's shape with a layout: its class has one window for every layer.
        (Architecture(pos_encoding="rope", attention="sliding_window", window=16, global_every=3), "global_every=3"),
    ],
)
def test_the_issue_refusals(arch: Architecture, named: str) -> None:
    with pytest.raises(NotExpressible) as exc:
        hf_config(arch)
    assert named in str(exc.value) and "\n" not in str(exc.value)


LLAMA_3_2_1B = {  # config.json of meta-llama/Llama-3.2-1B (as published)
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": 128001, "head_dim": 64, "hidden_act": "silu", "hidden_size": 2048,
    "initializer_range": 0.02, "intermediate_size": 8192, "max_position_embeddings": 131072, "mlp_bias": False,
    "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8,
    "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0,
    "low_freq_factor": 1.0, "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": True, "torch_dtype": "bfloat16", "use_cache": True,
    "vocab_size": 128256,
}  # fmt: skip


def test_a_published_llama_imports_with_its_shape_and_one_line_of_what_is_left_out() -> None:
    from archbench.search_space.presets import preset

    imported = from_hf(LLAMA_3_2_1B)
    assert imported.arch.replace(quant="fp32") == preset("llama-3.2-1b").arch
    assert imported.arch.quant == "bf16"  # the config's dtype
    note = imported.note()
    assert "\n" not in note and "rope_theta': 500000.0" in note and "llama3" in note
    with pytest.raises(NotExpressible, match="strict import refuses"):
        from_hf(LLAMA_3_2_1B, strict=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Architecture.from_hf(LLAMA_3_2_1B)
    assert any("rope_parameters" in str(w.message) for w in caught)


def test_a_published_gpt2_imports_exactly_but_its_dropout_is_named() -> None:
    from archbench.search_space.presets import preset

    published = {"model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12,
                 "n_positions": 1024, "vocab_size": 50257, "activation_function": "gelu_new", "resid_pdrop": 0.1,
                 "embd_pdrop": 0.1, "attn_pdrop": 0.1, "layer_norm_epsilon": 1e-05}  # fmt: skip
    imported = from_hf(published)
    assert imported.arch == preset("gpt2").arch
    assert imported.left_out == ("resid_pdrop=0.1", "embd_pdrop=0.1", "attn_pdrop=0.1")


def test_qwen2_imports_without_its_qkv_biases_and_says_so() -> None:
    qwen = {"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
            "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
            "max_position_embeddings": 32768, "rope_theta": 1000000.0, "rms_norm_eps": 1e-06,
            "tie_word_embeddings": True, "use_sliding_window": False, "sliding_window": 32768,
            "max_window_layers": 21, "torch_dtype": "bfloat16"}  # fmt: skip
    imported = from_hf(qwen)
    assert imported.arch.bias is False and imported.arch.attention == "dense" and imported.arch.kv_heads == 2
    assert "q/k/v biases" in imported.note()
    mixed = {**qwen, "use_sliding_window": True, "sliding_window": 4096}  # window on the top 3 layers only
    with pytest.raises(NotExpressible, match="layer_types mixes"):
        from_hf(mixed)


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"model_type": "bert"}, "model_type 'bert' cannot be imported"),
        ({"hidden_size": 64}, "model_type None cannot be imported"),
        ({**LLAMA_3_2_1B, "hidden_act": "gelu"}, "hidden_act='gelu'"),
        ({**LLAMA_3_2_1B, "head_dim": 128}, "head_dim=128"),
        ({**LLAMA_3_2_1B, "mlp_bias": True}, "mlp_bias=True"),
        ({**LLAMA_3_2_1B, "num_key_value_heads": 5}, "kv_heads=5"),
        ({"model_type": "gpt2", "activation_function": "relu"}, "activation_function='relu'"),
        ({"model_type": "starcoder2", "use_bias": False}, "use_bias=False"),
    ],
)
def test_import_refusals_are_one_line(config, match: str) -> None:
    with pytest.raises(NotExpressible, match=match) as exc:
        from_hf(config)
    assert "\n" not in str(exc.value)


def test_write_hf_dir_refuses_a_non_empty_dir_unless_forced(tmp_path) -> None:
    arch = EXACT["llama"]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(Exception, match="not empty; use --force"):
        write_hf_dir(arch, tmp_path / "out")
    files = write_hf_dir(arch, tmp_path / "out", force=True)
    assert [f.name for f in files] == ["config.json"]  # replaced whole: keep.txt is gone
    write_hf_dir(arch, tmp_path / "empty")  # a fresh or empty one needs no --force
    with pytest.raises(NotExpressible):
        write_hf_dir(Architecture(residual="rezero"), tmp_path / "refused")
    assert not (tmp_path / "refused").exists()


def test_search_space_and_leaderboard_do_not_import_transformers() -> None:
    import subprocess
    import sys

    code = (
        "import sys, archbench, archbench.search_space, archbench.leaderboard, archbench.interop; "
        "archbench.search_space.load_arch('preset:gpt2'); "
        "bad = [m for m in ('transformers', 'litgpt', 'torch') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
