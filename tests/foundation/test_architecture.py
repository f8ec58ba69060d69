"""Architecture: validation, canonical form, stable ids, round trips (property tests)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from archbench import Architecture, ArchitectureError
from archbench.search_space import registries
from archbench.search_space.architecture import FFN_ACTS, NORMS, POS_ENCODINGS, QUANTS

RESIDUALS = registries.RESIDUALS.names()  # every registered residual type
PATTERNS = registries.ATTENTION.names()  # every registered attention pattern
FIELDS = [
    "depth", "width", "heads", "kv_heads", "ffn_ratio", "ffn_act", "norm", "residual", "drop_path", "attention",
    "window", "global_every", "global_last", "quant", "unique_layers", "pos_encoding", "vocab_size", "max_seq_len",
    "tie_embeddings", "bias", "qkv_conv", "recursion_rank", "depth_capacity",
]  # fmt: skip


@st.composite
def architectures(draw: st.DrawFn) -> Architecture:
    heads = draw(st.sampled_from([1, 2, 3, 4, 8]))
    head_dim = draw(st.sampled_from([2, 4, 6, 8, 16]))
    depth = draw(st.integers(1, 12))
    unique = draw(st.sampled_from([d for d in range(1, depth + 1) if depth % d == 0]))
    max_seq_len = draw(st.integers(2, 4096))
    attention = draw(st.sampled_from(PATTERNS))
    window = draw(st.integers(1, max_seq_len - 1)) if attention in ("sliding_window", "block_sparse") else 0
    return Architecture(
        depth=depth,
        width=heads * head_dim,
        heads=heads,
        kv_heads=draw(st.sampled_from([d for d in range(1, heads + 1) if heads % d == 0])),
        ffn_ratio=draw(st.sampled_from([0.5, 1.0, 2.0, 8 / 3, 3.5, 4.0])),
        ffn_act=draw(st.sampled_from(FFN_ACTS)),
        norm=draw(st.sampled_from(NORMS)),
        residual=draw(st.sampled_from(RESIDUALS)),
        drop_path=draw(st.floats(0.0, 0.9)),
        attention=attention,
        window=window,
        global_every=draw(st.integers(0, depth)),
        global_last=draw(st.booleans()),
        quant=draw(st.sampled_from(QUANTS)),
        unique_layers=unique,
        pos_encoding=draw(
            st.sampled_from(
                [
                    p
                    for p in POS_ENCODINGS
                    if registries.ATTENTION.meta(attention).get("scores", True) or p != "relative"
                ]
            )
        ),
        vocab_size=draw(st.integers(1, 100_000)),
        max_seq_len=max_seq_len,
        tie_embeddings=draw(st.booleans()),
        bias=draw(st.booleans()),
        qkv_conv=draw(st.booleans()),
        recursion_rank=draw(st.integers(0, 16)) if unique < depth else 0,
        depth_capacity=draw(st.floats(0.01, 1.0)),
    )


def test_field_names_are_exactly_the_contract() -> None:
    assert list(Architecture.field_names()) == FIELDS


@pytest.mark.slow
@given(architectures())
@settings(max_examples=200, deadline=None)
def test_round_trip_dict_yaml_and_id(arch: Architecture) -> None:
    assert Architecture.from_dict(arch.to_dict()) == arch
    again = Architecture.from_yaml(arch.to_yaml())
    assert again == arch
    assert again.arch_id == arch.arch_id
    assert len(arch.arch_id) == 12 and int(arch.arch_id, 16) >= 0
    assert yaml.safe_load(arch.to_yaml()) == arch.to_dict()


@given(architectures(), architectures())
@settings(max_examples=100, deadline=None)
def test_id_differs_when_fields_differ(a: Architecture, b: Architecture) -> None:
    assert (a.arch_id == b.arch_id) == (a == b)


def test_arch_id_is_stable_across_processes_and_machines() -> None:
    # A golden value: the id must not depend on the process, hash seed or machine.
    assert Architecture().arch_id == "7af87ff765bc"
    code = "from archbench import Architecture; print(Architecture().arch_id)"
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "7af87ff765bc"


def test_canonical_forms() -> None:
    # An unused window does not make a new architecture; unique_layers None means no sharing.
    assert Architecture(attention="dense", window=64) == Architecture(attention="dense")
    assert Architecture(attention="linear", window=5).window == 0
    assert Architecture(depth=6, unique_layers=None).unique_layers == 6
    assert Architecture(depth=6, unique_layers=None).arch_id == Architecture(depth=6, unique_layers=6).arch_id
    assert Architecture(depth=4.0).depth == 4 and isinstance(Architecture(depth=4.0).depth, int)
    assert Architecture(ffn_ratio=4).ffn_ratio == 4.0


def test_derived_sizes() -> None:
    arch = Architecture(width=96, heads=3, ffn_ratio=8 / 3)
    assert arch.head_dim == 32
    assert arch.ffn_hidden == round(8 / 3 * 96) == 256


INVALID = [
    ({"heads": 5}, "heads", "must divide width=128"),
    ({"heads": 4, "kv_heads": 3}, "kv_heads", "must divide heads=4"),
    ({"heads": 4, "kv_heads": 8}, "kv_heads", "must divide heads=4"),
    ({"depth": 6, "unique_layers": 4}, "unique_layers", "must divide depth=6"),
    ({"unique_layers": 8}, "unique_layers", "must divide depth=4"),
    ({"residual": "pre-ln"}, "residual", "did you mean 'pre_ln'"),
    ({"residual": "resnet"}, "residual", "must be one of pre_ln, post_ln"),
    ({"attention": "sparse"}, "attention", "must be one of"),
    ({"attention": "sliding_window", "window": 0}, "window", "integer >= 1"),
    ({"attention": "sliding_window", "window": 256}, "window", "window < max_seq_len=256"),
    ({"attention": "block_sparse", "window": 300}, "window", "window < max_seq_len=256"),
    ({"quant": "int4"}, "quant", "fp32, bf16, fp16, int8, int8_weight_only, fp8"),
    ({"ffn_act": "relu"}, "ffn_act", "gelu, swiglu"),
    ({"norm": "batchnorm"}, "norm", "layernorm, rmsnorm"),
    ({"pos_encoding": "alibi"}, "pos_encoding", "learned, rope, none"),
    ({"depth": 0}, "depth", "integer >= 1"),
    ({"depth": 2.5}, "depth", "integer >= 1"),
    ({"depth": True}, "depth", "integer >= 1"),
    ({"width": "128"}, "width", "integer >= 1"),
    ({"ffn_ratio": 0}, "ffn_ratio", "(0, 64]"),
    ({"ffn_ratio": float("inf")}, "ffn_ratio", "(0, 64]"),
    ({"ffn_ratio": 0.001, "width": 32}, "ffn_ratio", "at least 1"),
    ({"drop_path": 1.0}, "drop_path", "[0, 1)"),
    ({"drop_path": -0.1}, "drop_path", "[0, 1)"),
    ({"tie_embeddings": "yes"}, "tie_embeddings", "true or false"),
    ({"bias": 1}, "bias", "true or false"),
    ({"vocab_size": 0}, "vocab_size", "integer >= 1"),
    ({"width": 96, "heads": 32, "pos_encoding": "rope"}, "heads", "even head size"),
]


@pytest.mark.parametrize(("kwargs", "field", "allowed"), INVALID)
def test_invalid_values_fail_with_one_line(kwargs: dict, field: str, allowed: str) -> None:
    with pytest.raises(ArchitectureError) as info:
        Architecture(**kwargs)
    msg = str(info.value)
    assert "\n" not in msg
    assert f"{field}=" in msg and allowed in msg
    assert info.value.field == field


@pytest.mark.slow
@given(architectures(), st.sampled_from(FIELDS), st.sampled_from(["bogus", -3, None, 3.7, [1], True]))
@settings(max_examples=300, deadline=None)
def test_any_bad_value_is_a_one_line_error_naming_the_field(arch: Architecture, field: str, bad: object) -> None:
    data = arch.to_dict()
    data[field] = bad
    try:
        Architecture.from_dict(data)
    except ArchitectureError as exc:
        msg = str(exc)
        assert "\n" not in msg
        assert msg.startswith("invalid architecture: ")
    # Some substitutions are legitimately valid (e.g. unique_layers=None, window unused); then nothing to check.


def test_unknown_field_is_named_with_a_suggestion() -> None:
    with pytest.raises(ArchitectureError, match=r"dept=3: unknown field; did you mean 'depth'\?"):
        Architecture.from_dict({"dept": 3})
    with pytest.raises(ArchitectureError, match="must be a mapping"):
        Architecture.from_dict([1, 2])  # type: ignore[arg-type]


def test_is_frozen_and_hashable() -> None:
    arch = Architecture()
    with pytest.raises(AttributeError):
        arch.depth = 3  # type: ignore[misc]
    assert len({arch, Architecture(), arch.replace(depth=2)}) == 2
    with pytest.raises(ArchitectureError):
        arch.replace(heads=7)


def test_architecture_import_does_not_import_torch() -> None:
    code = (
        "import sys, archbench; archbench.Architecture(); archbench.SearchSpace.builtin('lm_tiny');"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
