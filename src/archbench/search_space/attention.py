"""Attention patterns: dense, sliding window, block-sparse and linear.

Every pattern maps ``(q, k, v)`` of shape ``(B, H, S, D)`` to an output of q's shape; k and v may have
fewer heads (grouped-query attention: ``H`` divisible by their head count).

* ``dense``: ``scaled_dot_product_attention`` (flash / memory-efficient kernels where available).
* ``sliding_window`` and ``block_sparse``: a FlexAttention block mask, so that blocks outside the
  pattern are skipped and sparsity saves real work. FlexAttention has no backward pass on CPU
  (pytorch#148752), so when gradients are needed on CPU the *same* mask is applied through SDPA as a
  boolean mask (equal to 5e-7 in fp32; it does not skip work, but it trains). The same holds for
  inference on CPU when flex is not compiled: eager flex there is a slow reference no deployment runs.
  Tests check the two paths agree.
* ``linear``: causal linear attention with the positive feature map ``elu(x) + 1`` (Katharopoulos et
  al., 2020), computed in chunks: quadratic inside a chunk, a running ``k^T v`` state across chunks, so
  memory is O(S * D + S/C * D^2) rather than O(S^2).

Every pattern that computes scores takes an optional additive :class:`PositionBias` (a learned relative
position bias, ``pos_encoding=relative``): SDPA gets it as a float mask, FlexAttention as a ``score_mod``
that reads the bias table (so skipped blocks stay skipped). Linear attention has no score matrix to
bias: it is registered with ``scores=False`` and an Architecture refuses that combination.

Patterns are registered in :data:`archbench.search_space.registries.ATTENTION`; a user pattern
subclasses :class:`AttentionPattern` and registers itself with ``uses_window=...``.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention

from archbench.search_space.kv_cache import AttentionCache, KVLayer, LinearState, positions
from archbench.search_space.registries import ATTENTION

MaskMod = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
ScoreMod = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor], Tensor]


class PositionBias(Protocol):
    """An additive attention-score bias that depends on query and key positions only."""

    def __call__(self, q_pos: Tensor, kv_pos: Tensor) -> Tensor:
        """The bias ``(H, Tq, Tk)`` for queries at ``q_pos`` and keys at ``kv_pos``."""
        ...

    def score_mod(self) -> ScoreMod:
        """The same bias as a FlexAttention ``score_mod`` over absolute indices."""
        ...


def biased_mask(
    allowed: Tensor | None, bias: PositionBias, q_pos: Tensor, kv_pos: Tensor, dtype: torch.dtype
) -> Tensor:
    """SDPA's float mask: the bias where ``allowed`` (None: everywhere), minus infinity elsewhere."""
    scores = bias(q_pos, kv_pos).to(dtype)
    return scores if allowed is None else scores.masked_fill(~allowed, float("-inf"))


_FLEX_COMPILE: bool | None = None  # None: decided per device (compiled on CUDA, eager on CPU)
_compiled_flex: Callable[..., Tensor] | None = None


def set_flex_compile(enabled: bool | None) -> None:
    """Force FlexAttention compiled (True) or eager (False); None restores the per-device default.

    Compiled flex is what saves work, but on CPU each new shape costs seconds to compile (20 s for the
    first), so CPU defaults to eager unless ``ARCHBENCH_FLEX_COMPILE=1`` or this says otherwise.
    """
    global _FLEX_COMPILE
    _FLEX_COMPILE = enabled


@contextlib.contextmanager
def flex_compile_mode(enabled: bool | None) -> Iterator[None]:
    """Run FlexAttention compiled (True) or eager (False) inside the block, then restore the setting."""
    global _FLEX_COMPILE
    previous = _FLEX_COMPILE
    _FLEX_COMPILE = enabled
    try:
        yield
    finally:
        _FLEX_COMPILE = previous


def flex_compiled(device: torch.device) -> bool:
    """Whether FlexAttention runs compiled on ``device`` under the current setting."""
    if _FLEX_COMPILE is not None:
        return _FLEX_COMPILE
    env = os.environ.get("ARCHBENCH_FLEX_COMPILE")
    if env is not None:
        return env.strip().lower() not in ("0", "false", "no", "")
    return device.type == "cuda"


def _gqa(q: Tensor, k: Tensor) -> bool:
    """Grouped queries: fewer key/value heads than query heads (each kv head serves a group)."""
    return k.shape[-3] != q.shape[-3]


def _flex(q: Tensor, k: Tensor, v: Tensor, block_mask: BlockMask, score_mod: ScoreMod | None = None) -> Tensor:
    global _compiled_flex
    gqa = _gqa(q, k)
    if flex_compiled(q.device):
        if _compiled_flex is None:
            _compiled_flex = torch.compile(flex_attention, dynamic=False)
        return _compiled_flex(  # type: ignore[return-value]
            q, k, v, score_mod=score_mod, block_mask=block_mask, enable_gqa=gqa
        )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
        return flex_attention(  # type: ignore[return-value]
            q, k, v, score_mod=score_mod, block_mask=block_mask, enable_gqa=gqa
        )


def _tensors(bias: PositionBias) -> list[Tensor]:
    """The bias's parameters, if it is a module (whether it learns decides flex or SDPA)."""
    params = getattr(bias, "parameters", None)
    return list(params()) if callable(params) else []


def flex_block_size(window: int) -> int:
    """FlexAttention block size for a window: the largest of 128/64/32/16 not above it."""
    for size in (128, 64, 32):
        if window >= size:
            return size
    return 16


class AttentionPattern:
    """Maps (q, k, v) -> output. ``causal`` is False for the encoder."""

    uses_window = False
    scores = True  # computes a score matrix (so a position bias can be added to it)

    def __init__(self, window: int = 0, causal: bool = True) -> None:
        self.window = window
        self.causal = causal

    def __call__(self, q: Tensor, k: Tensor, v: Tensor, bias: PositionBias | None = None) -> Tensor:
        raise NotImplementedError

    def kept_fraction(self, seq_len: int) -> float:
        """Fraction of the full S x S score matrix this pattern computes (for FLOP accounting)."""
        return 1.0

    # Incremental decoding. ``prefill`` runs the prompt through the normal (fast) path and returns the
    # cache; ``step`` attends ``T`` new queries at positions ``pos ..`` over the cache and themselves.
    # Neither writes into the cache it is given.

    def allowed(self, q_pos: Tensor, kv_pos: Tensor) -> Tensor:
        """Boolean (Tq, Tk): may the query at ``q_pos`` see the key at ``kv_pos`` (causal by default)."""
        return kv_pos[None, :] <= q_pos[:, None]

    def keep(self, layer: KVLayer, next_pos: int) -> KVLayer:
        """What of ``layer`` queries at ``next_pos`` and later can still see (default: everything)."""
        return layer

    def _check_causal(self) -> None:
        if not self.causal:
            raise ValueError("incremental decoding needs a causal (decoder) attention pattern")

    def prefill(
        self, q: Tensor, k: Tensor, v: Tensor, bias: PositionBias | None = None
    ) -> tuple[Tensor, AttentionCache]:
        """The prompt's output (the same kernel as the full forward) and the cache for the next token."""
        self._check_causal()
        s = q.shape[-2]
        return self(q, k, v, bias), self.keep(KVLayer(k, v, positions(0, s, q.device)), s)

    def step(
        self, q: Tensor, k: Tensor, v: Tensor, cache: AttentionCache, pos: int, bias: PositionBias | None = None
    ) -> tuple[Tensor, AttentionCache]:
        """Output for new tokens at ``pos .. pos + T - 1`` given the cache of everything before them."""
        self._check_causal()
        assert isinstance(cache, KVLayer), f"{type(self).__name__} keeps keys and values, not {type(cache).__name__}"
        t = q.shape[-2]
        q_pos = positions(pos, t, q.device)
        kv_pos = torch.cat([cache.positions, q_pos])
        k_all, v_all = torch.cat([cache.k, k], dim=-2), torch.cat([cache.v, v], dim=-2)
        mask = self.allowed(q_pos, kv_pos)
        if bias is not None:
            mask = biased_mask(mask, bias, q_pos, kv_pos, q.dtype)
        out = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=mask, enable_gqa=_gqa(q, k))
        return out, self.keep(KVLayer(k_all, v_all, kv_pos), pos + t)


@ATTENTION.register("dense", uses_window=False)
class Dense(AttentionPattern):
    """Full (causal) attention through SDPA."""

    def __call__(self, q: Tensor, k: Tensor, v: Tensor, bias: PositionBias | None = None) -> Tensor:
        if bias is None:
            return F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, enable_gqa=_gqa(q, k))
        pos = positions(0, q.shape[-2], q.device)
        mask = biased_mask(self.allowed(pos, pos) if self.causal else None, bias, pos, pos, q.dtype)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=_gqa(q, k))

    def kept_fraction(self, seq_len: int) -> float:
        return (seq_len + 1) / (2 * seq_len) if self.causal else 1.0


class MaskedPattern(AttentionPattern):
    """A pattern given by a FlexAttention ``mask_mod``; flex where it can run, SDPA + mask otherwise."""

    uses_window = True

    def mask_mod(self) -> MaskMod:
        raise NotImplementedError

    def dense_mask(self, seq_len: int, device: torch.device) -> Tensor:
        """The pattern as an (S, S) boolean matrix (True = attend), from the same mask_mod."""
        return _dense_mask(type(self), self.window, self.causal, seq_len, str(device))

    def block_mask(self, seq_len: int, device: torch.device) -> BlockMask:
        return _block_mask(type(self), self.window, self.causal, seq_len, str(device))

    def use_flex(self, q: Tensor, k: Tensor, v: Tensor) -> bool:
        """FlexAttention everywhere except on a CPU when gradients are needed (flex has no CPU backward)
        or flex is not compiled there (eager flex on a CPU is a slow reference; SDPA with the same mask
        gives the same numbers)."""
        if q.device.type != "cpu":
            return True
        needs_grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
        return not needs_grad and flex_compiled(q.device)

    def __call__(self, q: Tensor, k: Tensor, v: Tensor, bias: PositionBias | None = None) -> Tensor:
        seq_len = q.shape[-2]
        # A bias that learns goes through SDPA: flex's backward through a captured parameter is not
        # something every torch this project supports does.
        learns = bias is not None and torch.is_grad_enabled() and any(p.requires_grad for p in _tensors(bias))
        if self.use_flex(q, k, v) and not learns:
            score_mod = bias.score_mod() if bias is not None else None
            return _flex(q, k, v, self.block_mask(seq_len, q.device), score_mod)
        mask = self.dense_mask(seq_len, q.device)
        if bias is not None:
            pos = positions(0, seq_len, q.device)
            mask = biased_mask(mask, bias, pos, pos, q.dtype)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=_gqa(q, k))

    def kept_fraction(self, seq_len: int) -> float:
        return float(self.dense_mask(seq_len, torch.device("cpu")).float().mean())

    def allowed(self, q_pos: Tensor, kv_pos: Tensor) -> Tensor:
        zero = torch.zeros((), dtype=torch.long, device=q_pos.device)
        return self.mask_mod()(zero, zero, q_pos[:, None], kv_pos[None, :])


@lru_cache(maxsize=64)
def _dense_mask(cls: type[MaskedPattern], window: int, causal: bool, seq_len: int, device: str) -> Tensor:
    mod = cls(window, causal).mask_mod()
    idx = torch.arange(seq_len, device=device)
    zero = torch.zeros((), dtype=torch.long, device=device)
    return mod(zero, zero, idx[:, None], idx[None, :])


@lru_cache(maxsize=64)
def _block_mask(cls: type[MaskedPattern], window: int, causal: bool, seq_len: int, device: str) -> BlockMask:
    return create_block_mask(
        cls(window, causal).mask_mod(),
        B=None,
        H=None,
        Q_LEN=seq_len,
        KV_LEN=seq_len,
        device=device,
        BLOCK_SIZE=flex_block_size(window),
    )


@ATTENTION.register("sliding_window", uses_window=True)
class SlidingWindow(MaskedPattern):
    """Each token sees the ``window`` most recent tokens, itself included (Longformer / Mistral style).

    Non-causal (encoder): tokens within ``window - 1`` positions on either side.
    """

    def mask_mod(self) -> MaskMod:
        w, causal = self.window, self.causal

        def sliding(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
            if causal:
                return (kv_idx <= q_idx) & (q_idx - kv_idx < w)
            return (q_idx - kv_idx).abs() < w

        return sliding

    def keep(self, layer: KVLayer, next_pos: int) -> KVLayer:
        # A query at p >= next_pos sees keys p - window + 1 .. p: at most the last window - 1 cached ones.
        start = max(0, layer.length - (self.window - 1))
        return KVLayer(layer.k[:, :, start:], layer.v[:, :, start:], layer.positions[start:])


@ATTENTION.register("block_sparse", uses_window=True)
class BlockSparse(MaskedPattern):
    """Blocks of ``window`` tokens; a query block sees its own block, the one before it and the first.

    This is the local + global block pattern of BigBird / Sparse Transformer reduced to what a block
    mask can skip: per query block at most three key blocks are computed, so work is O(S * window).
    The first block acts as global memory. Non-causal: own, previous and next block, and block 0
    (which in turn sees every block).
    """

    def mask_mod(self) -> MaskMod:
        w, causal = self.window, self.causal

        def block_sparse(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
            qb, kb = q_idx // w, kv_idx // w
            if causal:
                return (kv_idx <= q_idx) & ((qb - kb <= 1) | (kb == 0))
            return ((qb - kb).abs() <= 1) | (kb == 0) | (qb == 0)

        return block_sparse

    def keep(self, layer: KVLayer, next_pos: int) -> KVLayer:
        # Later queries (block >= next_pos // w) see block 0 and blocks from the one before their own.
        # The cached positions are [0, min(w, next_pos)) and a contiguous run ending at next_pos - 1, so
        # both parts are slices whose sizes follow from next_pos alone (no data-dependent shapes).
        w = self.window
        first = min(w, next_pos)
        recent_from = max(w, (next_pos // w - 1) * w)
        recent = max(0, next_pos - recent_from)
        if first + recent >= layer.length:
            return layer
        tail = layer.length - recent
        k, v, p = layer.k, layer.v, layer.positions
        return KVLayer(
            torch.cat([k[:, :, :first], k[:, :, tail:]], dim=-2),
            torch.cat([v[:, :, :first], v[:, :, tail:]], dim=-2),
            torch.cat([p[:first], p[tail:]]),
        )


def _feature_map(x: Tensor) -> Tensor:
    return F.elu(x) + 1.0


@ATTENTION.register("linear", uses_window=False, scores=False)
class Linear(AttentionPattern):
    """Linear attention with feature map elu(x)+1; causal by chunked prefix sums.

    ``out_i = phi(q_i) . sum_{j<=i} phi(k_j) v_j^T / (phi(q_i) . sum_{j<=i} phi(k_j))``.
    Accumulation runs in fp32 whatever the input dtype (the running sums overflow fp16).
    """

    chunk = 64
    eps = 1e-6
    scores = False

    def __call__(self, q: Tensor, k: Tensor, v: Tensor, bias: PositionBias | None = None) -> Tensor:
        _no_bias(bias)
        dtype = q.dtype
        if _gqa(q, k):  # each kv head serves a group of query heads
            group = q.shape[-3] // k.shape[-3]
            k, v = k.repeat_interleave(group, dim=-3), v.repeat_interleave(group, dim=-3)
        q, k, v = _feature_map(q.float()), _feature_map(k.float()), v.float()
        if not self.causal:
            kv = torch.einsum("bhsd,bhse->bhde", k, v)
            num = torch.einsum("bhsd,bhde->bhse", q, kv)
            den = torch.einsum("bhsd,bhd->bhs", q, k.sum(dim=2))
            return (num / (den.unsqueeze(-1) + self.eps)).to(dtype)
        b, h, s, _ = q.shape
        c = min(self.chunk, s)
        pad = (-s) % c
        if pad:  # zero-padded keys/values add nothing to the sums; padded queries are dropped below
            q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
        n = (s + pad) // c
        qc, kc, vc = (t.reshape(b, h, n, c, t.shape[-1]) for t in (q, k, v))
        tri = torch.ones(c, c, dtype=torch.bool, device=q.device).tril()
        scores = torch.einsum("bhncd,bhnkd->bhnck", qc, kc).masked_fill(~tri, 0.0)
        num = torch.einsum("bhnck,bhnke->bhnce", scores, vc)
        den = scores.sum(-1)
        # State from all earlier chunks (exclusive prefix sum over chunks).
        kv_chunk = torch.einsum("bhnkd,bhnke->bhnde", kc, vc)
        kv_prev = kv_chunk.cumsum(dim=2) - kv_chunk
        z_chunk = kc.sum(dim=3)
        z_prev = z_chunk.cumsum(dim=2) - z_chunk
        num = num + torch.einsum("bhncd,bhnde->bhnce", qc, kv_prev)
        den = den + torch.einsum("bhncd,bhnd->bhnc", qc, z_prev)
        out = num / (den.unsqueeze(-1) + self.eps)
        return out.reshape(b, h, n * c, -1)[:, :, :s].to(dtype)

    def kept_fraction(self, seq_len: int) -> float:
        return 0.0  # no S x S score matrix: cost is linear in S (counted separately)

    def prefill(
        self, q: Tensor, k: Tensor, v: Tensor, bias: PositionBias | None = None
    ) -> tuple[Tensor, AttentionCache]:
        self._check_causal()
        _no_bias(bias)
        kf, vf = _feature_map(k.float()), v.float()  # per kv head: grouped queries share the state
        state = LinearState(torch.einsum("bhsd,bhse->bhde", kf, vf), kf.sum(dim=2))
        return self(q, k, v), state

    def step(
        self, q: Tensor, k: Tensor, v: Tensor, cache: AttentionCache, pos: int, bias: PositionBias | None = None
    ) -> tuple[Tensor, AttentionCache]:
        """Recurrent form: constant work and memory per token, whatever the context."""
        self._check_causal()
        _no_bias(bias)
        assert isinstance(cache, LinearState), f"linear attention carries a LinearState, not {type(cache).__name__}"
        b, h, t, d = q.shape
        hk = k.shape[-3]
        qf = _feature_map(q.float()).view(b, hk, h // hk, t, d)  # query groups per kv head
        kf, vf = _feature_map(k.float()), v.float()
        scores = torch.einsum("bhgtd,bhsd->bhgts", qf, kf)
        if t > 1:
            tri = torch.ones(t, t, dtype=torch.bool, device=q.device).tril()
            scores = scores.masked_fill(~tri, 0.0)
        num = torch.einsum("bhgts,bhse->bhgte", scores, vf) + torch.einsum("bhgtd,bhde->bhgte", qf, cache.kv)
        den = scores.sum(-1) + torch.einsum("bhgtd,bhd->bhgt", qf, cache.z)
        out = (num / (den.unsqueeze(-1) + self.eps)).reshape(b, h, t, -1).to(q.dtype)
        state = LinearState(cache.kv + torch.einsum("bhsd,bhse->bhde", kf, vf), cache.z + kf.sum(dim=2))
        return out, state


def _no_bias(bias: PositionBias | None) -> None:
    if bias is not None:
        raise ValueError("linear attention has no score matrix to add a position bias to")


def make_pattern(name: str, window: int, causal: bool) -> AttentionPattern:
    """Instantiate the registered pattern ``name``."""
    return ATTENTION.get(name)(window, causal)
