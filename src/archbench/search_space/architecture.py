"""`Architecture`: the frozen, validated description of one transformer shape.

It is plain data (no torch): it round-trips through a dict and YAML, has a stable content hash
(`arch_id`) and fails at construction with one line naming the field, the value and what is allowed.
`archbench.build(arch)` turns it into an ``nn.Module``.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import yaml

from archbench.errors import ArchitectureError
from archbench.search_space.registries import ATTENTION, RESIDUALS

FFN_ACTS = ("gelu", "swiglu", "relu2")  # relu2: Primer's squared ReLU
NORMS = ("layernorm", "rmsnorm")
QUANTS = ("fp32", "bf16", "fp16", "int8", "int8_weight_only", "fp8")
POS_ENCODINGS = ("learned", "rope", "none", "relative")
GLOBAL = "dense"  # the pattern of a global layer in a hybrid layout (full causal attention)

# Bump only if the hashing rule itself changes. A field added later is hashed only when it differs from
# the value every older architecture implicitly had, so old ids stay valid (see _implicit).
_HASH_VERSION = 1


def _implicit(arch: Architecture) -> dict[str, Any]:
    """Fields added after the first release, with the value older architectures implicitly had."""
    return {
        "kv_heads": arch.heads,
        "global_every": 0,
        "global_last": False,
        "qkv_conv": False,
        "recursion_rank": 0,
        "depth_capacity": 1.0,
    }


def _choice(name: str, value: Any, allowed: tuple[str, ...] | list[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        close = difflib.get_close_matches(str(value), list(allowed), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ArchitectureError(name, value, f"must be one of {', '.join(allowed)}{hint}")
    return value


def _int(name: str, value: Any, lo: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArchitectureError(name, value, f"must be an integer >= {lo}")
    if not isinstance(value, numbers.Integral) and (not math.isfinite(float(value)) or float(value) != int(value)):
        raise ArchitectureError(name, value, f"must be an integer >= {lo}")
    v = int(value)
    if v < lo:
        raise ArchitectureError(name, value, f"must be an integer >= {lo}")
    return v


def _divisor(name: str, value: Any, of_name: str, of: int, hint: str = "") -> int:
    """``value`` (None: ``of`` itself) as an integer that divides ``of``, the field ``of_name``."""
    v = _int(name, of if value is None else value)
    if v > of or of % v:
        divisors = ", ".join(str(d) for d in range(1, of + 1) if of % d == 0)
        raise ArchitectureError(name, v, f"must divide {of_name}={of} (one of {divisors}{hint})")
    return v


def _float(name: str, value: Any, lo: float, hi: float, hi_open: bool, lo_open: bool) -> float:
    lo_b, hi_b = ("(" if lo_open else "["), (")" if hi_open else "]")
    allowed = f"must be a number in {lo_b}{lo:g}, {hi:g}{hi_b}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArchitectureError(name, value, allowed)
    v = float(value)
    if not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
        raise ArchitectureError(name, value, allowed)
    return v


def _bool(name: str, value: Any) -> bool:
    if type(value).__name__ == "bool_":  # numpy.bool_
        value = bool(value)
    if not isinstance(value, bool):
        raise ArchitectureError(name, value, "must be true or false")
    return value


@dataclass(frozen=True)
class Architecture:
    """One transformer shape. Field names are the leaderboard's columns and the export format's keys."""

    depth: int = 4
    width: int = 128
    heads: int = 4
    kv_heads: int | None = None  # grouped-query attention: None means kv_heads = heads (multi-head); 1 is MQA
    ffn_ratio: float = 4.0
    ffn_act: str = "gelu"
    norm: str = "layernorm"
    residual: str = "pre_ln"
    drop_path: float = 0.0
    attention: str = "dense"
    window: int = 0
    # Layer layout (hybrid attention): with a cheaper ``attention`` than dense, every ``global_every``-th
    # layer (layers k-1, 2k-1, ...; 0: none) and, with ``global_last``, the last layer use full causal
    # attention instead. Canonical: 0/False where they change nothing (dense attention; a last layer
    # every-k already makes global) and (0, True) for every depth-th layer, so equal layouts have equal ids.
    global_every: int = 0
    global_last: bool = False
    quant: str = "fp32"
    unique_layers: int | None = None  # None: one block per layer (no sharing); canonicalised to depth
    pos_encoding: str = "learned"
    vocab_size: int = 256
    max_seq_len: int = 256
    tie_embeddings: bool = True
    bias: bool = True
    qkv_conv: bool = False  # Primer: causal depthwise conv (width 3) after the q, k and v projections
    recursion_rank: int = 0  # relaxed recursion: per-depth LoRA rank on shared blocks (0: plain sharing)
    depth_capacity: float = 1.0  # dynamic depth: at most this fraction of tokens goes through layers 1..

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "depth", _int("depth", self.depth))
        s(self, "width", _int("width", self.width))
        s(self, "heads", _int("heads", self.heads))
        if self.width % self.heads:
            divisors = [d for d in range(1, min(self.width, 64) + 1) if self.width % d == 0]
            raise ArchitectureError(
                "heads", self.heads, f"must divide width={self.width} (e.g. {', '.join(map(str, divisors))})"
            )
        s(self, "kv_heads", _divisor("kv_heads", self.kv_heads, "heads", self.heads, "; 1 = multi-query"))
        s(self, "ffn_ratio", _float("ffn_ratio", self.ffn_ratio, 0.0, 64.0, False, True))
        if round(self.ffn_ratio * self.width) < 1:
            raise ArchitectureError(
                "ffn_ratio", self.ffn_ratio, f"round(ffn_ratio * width={self.width}) must be at least 1"
            )
        s(self, "ffn_act", _choice("ffn_act", self.ffn_act, FFN_ACTS))
        s(self, "norm", _choice("norm", self.norm, NORMS))
        s(self, "residual", _choice("residual", self.residual, RESIDUALS.names()))
        s(self, "drop_path", _float("drop_path", self.drop_path, 0.0, 1.0, True, False))
        s(self, "attention", _choice("attention", self.attention, ATTENTION.names()))
        s(self, "quant", _choice("quant", self.quant, QUANTS))
        s(self, "pos_encoding", _choice("pos_encoding", self.pos_encoding, POS_ENCODINGS))
        s(self, "vocab_size", _int("vocab_size", self.vocab_size))
        s(self, "max_seq_len", _int("max_seq_len", self.max_seq_len))
        if self.pos_encoding == "rope" and self.head_dim % 2:
            raise ArchitectureError(
                "heads",
                self.heads,
                f"rope needs an even head size, but width/heads = {self.width}/{self.heads} = {self.head_dim}",
            )
        if ATTENTION.meta(self.attention).get("uses_window"):
            s(self, "window", _int("window", self.window))
            if self.window >= self.max_seq_len:
                raise ArchitectureError(
                    "window",
                    self.window,
                    f"{self.attention} needs 1 <= window < max_seq_len={self.max_seq_len}",
                )
        else:
            _int("window", self.window, lo=0)
            s(self, "window", 0)  # canonical: unused by this pattern, so it must not change arch_id
        self._check_layout()
        s(self, "unique_layers", _divisor("unique_layers", self.unique_layers, "depth", self.depth))
        s(self, "tie_embeddings", _bool("tie_embeddings", self.tie_embeddings))
        s(self, "bias", _bool("bias", self.bias))
        if self.pos_encoding == "relative" and not ATTENTION.meta(self.attention).get("scores", True):
            raise ArchitectureError(
                "pos_encoding", "relative", f"needs attention scores to bias, and {self.attention} has none"
            )
        s(self, "qkv_conv", _bool("qkv_conv", self.qkv_conv))
        s(self, "recursion_rank", _int("recursion_rank", self.recursion_rank, lo=0))
        if self.recursion_rank and self.unique_layers == self.depth:
            raise ArchitectureError(
                "recursion_rank", self.recursion_rank, "needs shared layers (unique_layers < depth); 0 without sharing"
            )
        s(self, "depth_capacity", _float("depth_capacity", self.depth_capacity, 0.0, 1.0, False, True))
        if self.depth == 1:
            s(self, "depth_capacity", 1.0)  # canonical: layer 0 is never routed, so one layer has nothing to route

    def _check_layout(self) -> None:
        s = object.__setattr__
        every = _int("global_every", self.global_every, lo=0)
        if every > self.depth:
            raise ArchitectureError(
                "global_every",
                every,
                f"must be 0 (no global layer) or 1..depth={self.depth} (every k-th layer global)",
            )
        last = _bool("global_last", self.global_last)
        if self.attention == GLOBAL:
            every, last = 0, False  # every layer is global already
        elif every == self.depth:
            every, last = 0, True  # "every depth-th layer" is the last layer alone
        elif every and self.depth % every == 0:
            last = False  # the last layer is one of the every-k ones
        s(self, "global_every", every)
        s(self, "global_last", last)

    # ---- layer layout (torch-free: sizes, FLOPs and exports read it) ---------------------------
    def is_global(self, layer: int) -> bool:
        """Whether ``layer`` (0-based) uses full causal attention rather than the cheaper ``attention``."""
        if not 0 <= layer < self.depth:
            raise IndexError(f"layer {layer} outside 0..{self.depth - 1}")
        if self.attention == GLOBAL:
            return True
        every = self.global_every
        return bool(every and (layer + 1) % every == 0) or (self.global_last and layer == self.depth - 1)

    def layer_attention(self, layer: int) -> str:
        """The attention pattern name ``layer`` runs: ``"dense"`` for a global layer, else ``attention``."""
        return GLOBAL if self.is_global(layer) else self.attention

    @property
    def layer_patterns(self) -> tuple[str, ...]:
        """Every layer's attention pattern name, first layer first."""
        return tuple(self.layer_attention(i) for i in range(self.depth))

    @property
    def global_layers(self) -> int:
        """How many layers use full causal attention."""
        return sum(self.is_global(i) for i in range(self.depth))

    @property
    def hybrid(self) -> bool:
        """Whether layers differ in their attention pattern."""
        return 0 < self.global_layers < self.depth

    # ---- derived sizes -------------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    @property
    def ffn_hidden(self) -> int:
        """The FFN's hidden size, ``round(ffn_ratio * width)`` for every activation."""
        return round(self.ffn_ratio * self.width)

    # ---- (de)serialisation ---------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if f.init)

    def to_dict(self) -> dict[str, Any]:
        """Plain ``{field: value}`` with Python scalars only, in field order."""
        return {name: getattr(self, name) for name in self.field_names()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Architecture:
        """Build from a mapping; unknown keys fail with the closest field name suggested."""
        if not isinstance(data, Mapping):
            raise ArchitectureError("arch", type(data).__name__, "must be a mapping of field: value")
        names = cls.field_names()
        for key in data:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ArchitectureError(str(key), data[key], f"unknown field; {hint}fields: {', '.join(names)}")
        return cls(**{str(k): v for k, v in data.items()})

    @classmethod
    def from_hf(cls, config: Any, strict: bool = False) -> Architecture:
        """The architecture of a Hugging Face transformers config (object, config.json mapping or path).

        Llama, Mistral, Qwen2, GPT-2 and Starcoder2 configs import; what archbench cannot express is one line
        (``ConfigError``). Numbers archbench keeps fixed (RoPE base and scaling, norm eps, dropout) are left
        out with a warning naming them, or refused with ``strict=True``. Needs ``transformers``
        (see :func:`archbench.interop.hf.from_hf`).
        """
        import warnings

        from archbench.interop.hf import from_hf

        imported = from_hf(config, strict=strict)
        if imported.left_out:
            warnings.warn(imported.note(), stacklevel=2)
        return imported.arch

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> Architecture:
        return cls.from_dict(yaml.safe_load(text))

    def replace(self, **changes: Any) -> Architecture:
        """A copy with some fields changed (validated again).

        An unshared model stays unshared when only ``depth`` changes (unique_layers follows depth), and a
        multi-head one stays multi-head when only ``heads`` changes (kv_heads follows heads).
        """
        if "depth" in changes and "unique_layers" not in changes and self.unique_layers == self.depth:
            changes["unique_layers"] = None
        if "heads" in changes and "kv_heads" not in changes and self.kv_heads == self.heads:
            changes["kv_heads"] = None
        return dataclasses.replace(self, **changes)

    # ---- identity ------------------------------------------------------------------------------
    @cached_property
    def arch_id(self) -> str:
        """Stable 12-hex-digit content hash: the same fields give the same id on any machine."""
        implicit = _implicit(self)
        payload = {k: v for k, v in self.to_dict().items() if not (k in implicit and v == implicit[k])}
        text = json.dumps({"v": _HASH_VERSION, **payload}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def describe(self) -> str:
        """A short human-readable summary."""
        share = "" if self.unique_layers == self.depth else f" shared={self.unique_layers}"
        gqa = "" if self.kv_heads == self.heads else f"/kv{self.kv_heads}"
        win = f"(w={self.window})" if self.window else ""
        lora = f" lora{self.recursion_rank}" if self.recursion_rank else ""
        conv = " qkv_conv" if self.qkv_conv else ""
        conv += f" capacity={self.depth_capacity:g}" if self.depth_capacity < 1.0 else ""
        return (
            f"L{self.depth} d{self.width} h{self.heads}{gqa} ffn{self.ffn_ratio:g}x{self.ffn_act} {self.norm} "
            f"{self.residual} {self.attention}{win}{self.layout()} {self.pos_encoding} {self.quant}{share}{lora}{conv}"
        )

    def layout(self) -> str:
        """The layout suffix of :meth:`describe`: ``+global/3`` (every 3rd layer), ``+global_last``, or ""."""
        parts = ([f"global/{self.global_every}"] if self.global_every else []) + (
            ["global_last"] if self.global_last else []
        )
        return "".join(f"+{p}" for p in parts)
