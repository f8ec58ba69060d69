"""The one table that maps an :class:`Architecture` onto each ecosystem target, in both directions.

A :class:`Target` is one config class (Llama, Mistral, GPT-2, Starcoder2, Qwen2 in transformers; LitGPT's
``Config``). Its :class:`Need` rows say which architectures it expresses *exactly* (an architecture
failing one is refused, never written approximately); its :class:`Key` rows say how each config key is
written from the architecture and read back into its fields. Three kinds of key:

* a *field* key carries an archbench field (``num_hidden_layers`` <-> ``depth``);
* a *fixed* key has one value the class needs for archbench's computation (``hidden_act: silu``): written
  on export, and an imported config with another value is refused;
* a *numeric* key holds a number archbench keeps constant (RoPE base 10000, norm eps 1e-5, no dropout):
  written on export; an imported config with another value changes numbers, not shape or cost, so the
  import keeps the shape and says in one line what it left out.

Pure data, no transformers import: :mod:`.hf` and :mod:`.litgpt` turn these rows into config objects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from archbench.errors import ConfigError
from archbench.search_space.architecture import Architecture

EPS = 1e-5  # archbench's norm eps (search_space.residual.make_norm)
ROPE_BASE = 10000.0  # archbench's RoPE base (search_space.model.Rotary)
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


class NotExpressible(ConfigError):
    """The architecture (or imported config) has no exact counterpart in the target; one line says why."""


Config = Mapping[str, Any]


_FREE = object()


@dataclass(frozen=True)
class Need:
    """A condition the target puts on the architecture; ``wants`` says it for the refusal line.

    ``value``: the one value the field can have in this class (set on import), unless several can.
    """

    field: str
    ok: Callable[[Architecture], bool]
    wants: str
    value: Any = _FREE


def one_of(field: str, *values: Any) -> Need:
    only = values[0] if len(values) == 1 else _FREE
    return Need(field, lambda a: getattr(a, field) in values, f"{field}={'|'.join(map(str, values))}", only)


def flag(field: str, value: bool, why: str = "") -> Need:
    return Need(field, lambda a: getattr(a, field) is value, f"{field}={str(value).lower()}{why}", value)


PRE_LN = Need("residual", lambda a: a.residual == "pre_ln", "residual=pre_ln: the class is pre-LN only", "pre_ln")
UNSHARED = Need(
    "unique_layers", lambda a: a.unique_layers == a.depth, "unique_layers=depth: the class shares no layers"
)
FLOAT = Need(
    "quant", lambda a: a.quant in DTYPES, "quant=fp32|bf16|fp16: archbench's int8/fp8 recipes have no counterpart"
)
UNIFORM = Need(
    "global_every",
    lambda a: not a.hybrid,
    "one attention pattern on every layer (global_every=0, global_last=false): the class has no layer layout",
)
# What no target class has: every target needs these (a recursion rank needs sharing, refused by UNSHARED).
NO_TARGET_HAS = (
    flag("qkv_conv", False, ": no class has Primer's convolution after q/k/v"),
    Need(
        "depth_capacity", lambda a: a.depth_capacity == 1.0, "depth_capacity=1: no class routes tokens past layers", 1.0
    ),
)
MULTI_HEAD = Need("kv_heads", lambda a: a.kv_heads == a.heads, "kv_heads=heads: the class is multi-head only")


@dataclass(frozen=True)
class Key:
    """One config key: how it is written from an Architecture and what it says on import.

    ``back`` turns the config into archbench fields (None: the key sets no field). ``expect`` is the value
    the key must have on import given the rest of the config (fixed keys); ``numeric`` keys only note a
    different value.
    """

    name: str
    write: Callable[[Architecture], Any] | None
    back: Callable[[Config], dict[str, Any]] | None = None
    expect: Callable[[Config], tuple[Any, ...]] | None = None
    numeric: bool = False


def field(name: str, attr: str, write: Callable[[Architecture], Any] | None = None, back: Any = None) -> Key:
    """A key carrying one field: ``write`` defaults to the field's value, ``back`` to the key's value."""
    return Key(
        name,
        write or (lambda a: getattr(a, attr)),
        (lambda c: {attr: back(c)}) if back else (lambda c: {attr: c[name]}),
    )


def fixed(name: str, value: Any, *also: Any) -> Key:
    """A key archbench's computation fixes to ``value`` (``also``: other spellings of the same thing)."""
    return Key(name, lambda a: value, expect=lambda c: (value, *also))


def numeric(name: str, value: Any) -> Key:
    """A number archbench keeps at ``value``: written on export, noted (not refused) when an import differs."""
    return Key(name, lambda a: value, expect=lambda c: (value,), numeric=True)


def ratio(hidden: str, width: str) -> Callable[[Config], float]:
    """ffn_ratio from an FFN hidden size: archbench's hidden size is round(ffn_ratio * width)."""
    return lambda c: c[hidden] / c[width]


def _window_fields(c: Config) -> dict[str, Any]:
    """Mistral/Starcoder2: a window on every layer; one at least as long as the context masks nothing."""
    w = c.get("sliding_window")
    if w is None or w >= c["max_position_embeddings"]:
        return {"attention": "dense"}
    return {"attention": "sliding_window", "window": w}


LAYER_TYPES = {"dense": "full_attention", "sliding_window": "sliding_attention"}


def layer_types(arch: Architecture) -> list[str]:
    """transformers' ``layer_types`` of a (possibly hybrid) sliding-window or dense architecture."""
    return [LAYER_TYPES[p] for p in arch.layer_patterns]


def layout_fields(types: list[str], depth: int) -> dict[str, Any]:
    """``global_every`` / ``global_last`` of a per-layer list of ``full_attention`` / ``sliding_attention``
    (any mix of windowed layers with every k-th and/or the last layer global); NotExpressible otherwise."""
    unknown = sorted(set(types) - set(LAYER_TYPES.values()))
    if unknown or len(types) != depth:
        what = f"names {','.join(unknown)}" if unknown else f"has {len(types)} entries for {depth} layers"
        raise NotExpressible(f"layer_types {what}: archbench reads full_attention/sliding_attention, one per layer")
    full = [i for i, t in enumerate(types) if t == "full_attention"]
    for every in range(1, depth + 1):
        for last in (False, True):
            ruled = {i for i in range(depth) if (i + 1) % every == 0} | ({depth - 1} if last else set())
            if ruled == set(full):
                return {"global_every": every, "global_last": last}
    if full == [depth - 1]:
        return {"global_every": 0, "global_last": True}
    raise NotExpressible(
        f"layer_types mixes full_attention (layers {full}) and sliding_attention: archbench's layouts put full "
        "attention on every k-th layer and/or the last one"
    )


def _window_layout_fields(c: Config) -> dict[str, Any]:
    """A window on the sliding layers of ``layer_types`` (Ministral, Qwen2): all full is dense, all sliding
    is a uniform window, a mix is a hybrid layout when archbench's every-k(+last) rule says it."""
    depth = c["num_hidden_layers"]
    types = list(c.get("layer_types") or ["full_attention"] * depth)
    kinds = set(types)
    if kinds == {"full_attention"}:
        return {"attention": "dense"}
    window = _window_fields(c)
    if kinds == {"sliding_attention"} or window["attention"] == "dense":
        return window
    return {**window, **layout_fields(types, depth)}


def _gpt2_ratio(c: Config) -> float:
    """GPT-2's ``n_inner`` is None for the default 4 x n_embd."""
    return (c["n_inner"] or 4 * c["n_embd"]) / c["n_embd"]


def _dtype_fields(c: Config) -> dict[str, Any]:
    dtype = str(c.get("dtype") or "float32").removeprefix("torch.")
    back = {v: k for k, v in DTYPES.items()}
    if dtype not in back:
        raise NotExpressible(f"dtype={dtype}: archbench deploys float32, bfloat16 or float16")
    return {"quant": back[dtype]}


def _head_dim(c: Config) -> tuple[Any, ...]:
    return (None, c["hidden_size"] // c["num_attention_heads"])


DTYPE = Key("dtype", lambda a: DTYPES[a.quant], _dtype_fields)
ROPE = numeric("rope_parameters", {"rope_type": "default", "rope_theta": ROPE_BASE})
# Token ids belong to a tokenizer, not to the shape: none is written (defaults may lie outside the vocabulary).
NO_TOKENS = tuple(Key(f"{t}_token_id", lambda a: None) for t in ("bos", "eos", "pad"))

# Llama-type decoders: hidden_size, heads, kv heads, gated FFN, RMSNorm, RoPE.
_LLAMA_TYPE = (
    field("num_hidden_layers", "depth"),
    field("hidden_size", "width"),
    field("num_attention_heads", "heads"),
    field("num_key_value_heads", "kv_heads"),
    Key("head_dim", lambda a: a.head_dim, expect=_head_dim),
    field("intermediate_size", "ffn_ratio", lambda a: a.ffn_hidden, ratio("intermediate_size", "hidden_size")),
    field("vocab_size", "vocab_size"),
    field("max_position_embeddings", "max_seq_len"),
    field("tie_word_embeddings", "tie_embeddings"),
    fixed("hidden_act", "silu"),
    numeric("rms_norm_eps", EPS),
    ROPE,
    numeric("attention_dropout", 0.0),
    DTYPE,
    *NO_TOKENS,
)
_LLAMA_SHAPE = (
    PRE_LN,
    UNSHARED,
    FLOAT,
    one_of("norm", "rmsnorm"),
    one_of("ffn_act", "swiglu"),
    one_of("pos_encoding", "rope"),
)


@dataclass(frozen=True)
class Target:
    """One config class of the ecosystem and how archbench maps onto it."""

    name: str  # model_type in transformers; "litgpt" for LitGPT
    label: str  # the config class, for messages
    needs: tuple[Need, ...]
    keys: tuple[Key, ...]
    exports: bool = True  # False: import only (no architecture maps onto it exactly)
    left_out: tuple[str, ...] = ()  # what an import of this class always leaves out

    def misses(self, arch: Architecture) -> list[Need]:
        return [n for n in (*self.needs, *NO_TARGET_HAS) if not n.ok(arch)]

    def write(self, arch: Architecture) -> dict[str, Any]:
        return {k.name: k.write(arch) for k in self.keys if k.write is not None}

    def fields(self) -> dict[str, Any]:
        """The fields this class fixes (its one-valued needs), set on every import."""
        return {n.field: n.value for n in self.needs if n.value is not _FREE}


LLAMA = Target(
    "llama",
    "LlamaConfig",
    (*_LLAMA_SHAPE, one_of("attention", "dense")),
    (
        *_LLAMA_TYPE,
        field("attention_bias", "bias"),
        Key("mlp_bias", lambda a: a.bias, expect=lambda c: (c["attention_bias"],)),
    ),
)
MISTRAL = Target(
    "mistral",
    "MistralConfig",
    (*_LLAMA_SHAPE, one_of("attention", "sliding_window"), flag("bias", False), UNIFORM),
    (*_LLAMA_TYPE, Key("sliding_window", lambda a: a.window, _window_fields)),
)
# Ministral: Mistral's shape whose modelling code honours ``layer_types`` (transformers 5.3), so windowed
# layers with every k-th and/or the last layer global export exactly. Mistral's own class ignores it.
MINISTRAL = Target(
    "ministral",
    "MinistralConfig",
    (*_LLAMA_SHAPE, one_of("attention", "sliding_window"), flag("bias", False)),
    (
        *_LLAMA_TYPE,
        Key("sliding_window", lambda a: a.window, None),
        Key("layer_types", layer_types, _window_layout_fields),
    ),
)
GPT2 = Target(
    "gpt2",
    "GPT2Config",
    (
        PRE_LN,
        UNSHARED,
        FLOAT,
        MULTI_HEAD,
        one_of("norm", "layernorm"),
        one_of("ffn_act", "gelu"),
        one_of("pos_encoding", "learned"),
        one_of("attention", "dense"),
        flag("bias", True),
    ),
    (
        field("n_layer", "depth"),
        field("n_embd", "width"),
        Key("n_head", lambda a: a.heads, lambda c: {"heads": c["n_head"], "kv_heads": c["n_head"]}),
        field("n_inner", "ffn_ratio", lambda a: a.ffn_hidden, _gpt2_ratio),
        field("vocab_size", "vocab_size"),
        field("n_positions", "max_seq_len"),
        field("tie_word_embeddings", "tie_embeddings"),
        fixed("activation_function", "gelu_pytorch_tanh", "gelu_new"),  # the first: the kernel archbench runs
        fixed("scale_attn_weights", True),
        fixed("scale_attn_by_inverse_layer_idx", False),
        fixed("add_cross_attention", False),
        numeric("layer_norm_epsilon", EPS),
        numeric("resid_pdrop", 0.0),
        numeric("embd_pdrop", 0.0),
        numeric("attn_pdrop", 0.0),
        DTYPE,
        *NO_TOKENS,
    ),
)
STARCODER2 = Target(
    "starcoder2",
    "Starcoder2Config",
    (
        PRE_LN,
        UNSHARED,
        FLOAT,
        one_of("norm", "layernorm"),
        one_of("ffn_act", "gelu"),
        one_of("pos_encoding", "rope"),
        one_of("attention", "dense", "sliding_window"),
        UNIFORM,
        flag("bias", True, ": its LayerNorms always have a bias"),
    ),
    (
        field("num_hidden_layers", "depth"),
        field("hidden_size", "width"),
        field("num_attention_heads", "heads"),
        field("num_key_value_heads", "kv_heads"),
        field("intermediate_size", "ffn_ratio", lambda a: a.ffn_hidden, ratio("intermediate_size", "hidden_size")),
        field("vocab_size", "vocab_size"),
        field("max_position_embeddings", "max_seq_len"),
        field("tie_word_embeddings", "tie_embeddings"),
        Key("sliding_window", lambda a: a.window or None, _window_fields),
        fixed("use_bias", True),
        fixed("hidden_act", "gelu_pytorch_tanh", "gelu_new"),
        numeric("norm_epsilon", EPS),
        ROPE,
        numeric("attention_dropout", 0.0),
        numeric("residual_dropout", 0.0),
        numeric("embedding_dropout", 0.0),
        DTYPE,
        *NO_TOKENS,
    ),
)
QWEN2 = Target(
    "qwen2",
    "Qwen2Config",
    (*_LLAMA_SHAPE, Need("bias", lambda a: False, "q/k/v biases without o or MLP biases", False)),
    (*_LLAMA_TYPE, Key("layer_types", None, _window_layout_fields)),
    exports=False,
    left_out=("q/k/v biases (archbench's bias is all or nothing: imported with bias=false)",),
)
LITGPT = Target(
    "litgpt",
    "litgpt.Config",
    (
        PRE_LN,
        UNSHARED,
        Need("quant", lambda a: a.quant == "fp32", "quant=fp32: a LitGPT config carries no dtype"),
        one_of("pos_encoding", "rope"),
        one_of("attention", "dense", "sliding_window"),
        one_of("ffn_act", "gelu", "swiglu"),
        flag("tie_embeddings", False, ": LitGPT's head is never tied"),
        Need("bias", lambda a: a.bias or a.norm == "rmsnorm", "bias=true with layernorm: its LayerNorm has a bias"),
    ),
    (
        Key("name", lambda a: f"archbench-{a.arch_id}"),
        field("n_layer", "depth"),
        field("n_embd", "width"),
        field("n_head", "heads"),
        Key("head_size", lambda a: a.head_dim),
        field("n_query_groups", "kv_heads"),
        field("intermediate_size", "ffn_ratio", lambda a: a.ffn_hidden),
        Key("mlp_class_name", lambda a: "LLaMAMLP" if a.ffn_act == "swiglu" else "GptNeoxMLP"),
        Key("gelu_approximate", lambda a: "tanh"),
        Key("norm_class_name", lambda a: "RMSNorm" if a.norm == "rmsnorm" else "LayerNorm"),
        field("bias", "bias"),
        field("vocab_size", "vocab_size"),
        Key("padded_vocab_size", lambda a: a.vocab_size),
        field("block_size", "max_seq_len"),
        Key("sliding_window_size", lambda a: a.window or None),
        # 1 marks a windowed layer: LitGPT's per-layer placing expresses every hybrid layout of a window.
        Key("sliding_window_indices", lambda a: [int(p != "dense") for p in a.layer_patterns] if a.hybrid else None),
        fixed("parallel_residual", False),
        fixed("rotary_percentage", 1.0),
        numeric("rope_base", int(ROPE_BASE)),
        numeric("norm_eps", EPS),
    ),
)

# transformers' config classes, in the order export tries them (the first that expresses the shape wins).
HF_TARGETS: dict[str, Target] = {t.name: t for t in (LLAMA, MISTRAL, MINISTRAL, GPT2, STARCODER2, QWEN2)}
TARGETS: dict[str, Target] = {**HF_TARGETS, LITGPT.name: LITGPT}


def refusal(arch: Architecture, candidates: list[Target], what: str) -> str:
    """The one line saying which fields and values keep ``arch`` out of the closest candidates (those it
    misses least: every one of them, so a near miss of two classes names both ways out)."""
    fewest = min(len(t.misses(arch)) for t in candidates)
    closest = [t for t in candidates if len(t.misses(arch)) == fewest]
    parts = [
        f"{n.field}={getattr(arch, n.field)!r} ({t.label} needs {n.wants})" for t in closest for n in t.misses(arch)
    ]
    names = ", ".join(t.label for t in candidates)
    return f"no {what} config expresses arch {arch.arch_id} exactly: {'; '.join(parts)} [tried {names}]"


def choose(arch: Architecture, candidates: list[Target], what: str) -> Target:
    """The first candidate that expresses ``arch`` exactly; :class:`NotExpressible` otherwise."""
    for target in candidates:
        if not target.misses(arch):
            return target
    raise NotExpressible(refusal(arch, candidates, what))
