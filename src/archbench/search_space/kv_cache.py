"""What incremental decoding carries from one step to the next: per-layer key/value caches or states.

Values, not buffers: every decode step returns a *new* :class:`KVCache` and never writes into the old
one, so a measurement can time one step from the same warm cache again and again (fixed shapes: no
recompiles) and a test can branch two continuations from one prefix.

What a layer keeps depends on its attention pattern (see :mod:`.attention`):

* dense: every key and value so far (grows with the context);
* sliding window: the last ``window - 1`` keys and values (bounded however long the generation);
* block-sparse: the first block and the blocks the next query can still see (bounded by 3 blocks);
* linear: the recurrent state ``sum phi(k) v^T`` and ``sum phi(k)`` (constant size, fp32).

A layer with dynamic depth keeps a cache per sequence (its router sent different tokens of each through
it), the count it sent and the sum of its router's scores: a :class:`RoutedLayer`.

Primer's convolution after the q, k and v projections (``qkv_conv``) also needs the layer's last two
projection outputs: such a layer's cache is a :class:`ConvLayer` wrapping its attention cache.

The residual types need nothing more per token: the value residual's mixed values are what the dense
cache stores, and DenseFormer's depth-weighted average is taken per token within one step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class KVLayer:
    """Keys and values a layer's future queries may attend to, with their absolute positions.

    ``k``, ``v``: ``(B, kv_heads, L, D)``; ``positions``: ``(L,)`` int64, increasing.
    """

    k: Tensor
    v: Tensor
    positions: Tensor

    @property
    def length(self) -> int:
        return int(self.positions.shape[0])

    def nbytes(self) -> int:
        return self.k.numel() * self.k.element_size() + self.v.numel() * self.v.element_size()


@dataclass(frozen=True)
class LinearState:
    """Linear attention's recurrent state: ``kv = sum phi(k) v^T`` ``(B, H, D, D)`` and
    ``z = sum phi(k)`` ``(B, H, D)``, both fp32 (the running sums overflow fp16)."""

    kv: Tensor
    z: Tensor

    @property
    def length(self) -> int:
        return 0  # no per-token entries: constant size whatever the context

    def nbytes(self) -> int:
        return self.kv.numel() * self.kv.element_size() + self.z.numel() * self.z.element_size()


AttentionCache = KVLayer | LinearState


@dataclass(frozen=True)
class ConvLayer:
    """A layer with Primer's causal convolution: its attention cache and ``tail``, the last two fused
    q/k/v projection outputs before the convolution ``(B, 2, C)`` (zeros before the sequence starts)."""

    attn: AttentionCache
    tail: Tensor

    @property
    def length(self) -> int:
        return self.attn.length

    def nbytes(self) -> int:
        return self.attn.nbytes() + self.tail.numel() * self.tail.element_size()


@dataclass(frozen=True)
class RoutedLayer:
    """A layer with dynamic depth (``depth_capacity < 1``): each sequence's own cache of the tokens its
    router sent through the layer (None before the first), how many it sent, ``routed`` ``(B,)``, and the
    sum of its router's scores so far, ``score_sum`` ``(B,)`` float64 (tokens are wanted against its mean)."""

    seqs: tuple[AttentionCache | ConvLayer | None, ...]
    routed: Tensor
    score_sum: Tensor

    @property
    def length(self) -> int:
        return max((s.length for s in self.seqs if s is not None), default=0)

    def nbytes(self) -> int:
        return sum(s.nbytes() for s in self.seqs if s is not None)


LayerCache = KVLayer | LinearState | ConvLayer | RoutedLayer


@dataclass(frozen=True)
class KVCache:
    """The decode state of a whole model: one entry per layer (per *depth*, also when blocks are
    shared across depth, since each layer sees different inputs) and the tokens consumed so far."""

    layers: tuple[LayerCache, ...]
    pos: int

    def nbytes(self) -> int:
        """Bytes held by the cache (keys, values and recurrent states)."""
        return sum(layer.nbytes() for layer in self.layers)

    def mb(self) -> float:
        return self.nbytes() / 2**20

    def lengths(self) -> tuple[int, ...]:
        """Per-layer number of cached tokens (0 for recurrent states)."""
        return tuple(layer.length for layer in self.layers)


def positions(start: int, count: int, device: torch.device) -> Tensor:
    """Absolute positions ``start .. start + count - 1``."""
    return torch.arange(start, start + count, device=device)
