"""The decode cache's size from the architecture alone (no torch): each layer counted by its own pattern.

What a layer keeps after ``context`` tokens (:mod:`.kv_cache`; the same rules as the patterns' ``keep``):

* ``dense`` (and every global layer of a hybrid layout): all ``C`` positions;
* ``sliding_window``: the last ``min(C, W - 1)`` positions (the next query sees itself and W - 1 before);
* ``block_sparse``: the first block and the run from the block before the next query's own block;
* ``linear``: no positions (0 in :func:`kv_cache_positions`, as ``KVCache.lengths()`` says) but a recurrent
  state per key/value head, ``kv`` (D x D) and ``z`` (D), always fp32, whatever the context:
  :func:`kv_cache_bytes` counts its bytes exactly. In position-equivalents (a position holds ``2 * D``
  values per head group) it is ``ceil((D + 1) / 2)`` positions' worth of values:
  :func:`linear_state_positions`.

So with ``g`` global layers of ``L``, window ``W`` and context ``C``, a windowed model keeps
``g * C + (L - g) * min(C, W - 1)`` positions per head group.

Two seed methods add to it. Primer's convolution (``qkv_conv``) keeps, per layer and sequence, the last two
fused q/k/v projection outputs (``width + 2 * kv_heads * head_dim`` values each). Dynamic depth
(``depth_capacity < 1``) lets layers 1.. cache only the tokens their router sent through, at most
``floor(capacity * C)`` of ``C`` (the router's causal capacity rule): the sizes here are that bound, which
the real cache reaches when the router wants every token it may take. :func:`kv_cache_bytes` equals
``KVCache.nbytes()`` of the model's cache after ``context`` tokens (tests/foundation/test_layouts.py).
"""

from __future__ import annotations

import math

from archbench.search_space.architecture import Architecture

# Bytes per cached value by the deployed precision: the integer and fp8 recipes quantize the Linear
# weights only, so keys and values stay in the float model's fp32 (search_space.quantize).
VALUE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 4, "int8_weight_only": 4, "fp8": 4}
STATE_BYTES = 4  # linear attention's running sums are fp32 whatever the model's dtype


def layer_positions(pattern: str, window: int, head_dim: int, context: int) -> int:
    """Positions (or, for ``linear``, position-equivalents) one layer of ``pattern`` keeps after ``context``
    tokens, per key/value head."""
    c = context
    if pattern == "dense":
        return c
    if pattern == "sliding_window":
        return min(c, window - 1)
    if pattern == "block_sparse":
        first = min(window, c)
        recent = max(0, c - max(window, (c // window - 1) * window))
        return min(c, first + recent)
    if pattern == "linear":
        return 0
    known = "dense, sliding_window, block_sparse, linear"
    raise ValueError(f"no cache-size rule for attention pattern {pattern!r} ({known})")


def linear_state_positions(head_dim: int) -> int:
    """A linear layer's state (``D * D + D`` values per key/value head) in positions of ``2 * D`` values."""
    return -(-(head_dim + 1) // 2)


def _check_context(context: int) -> None:
    if isinstance(context, bool) or not isinstance(context, int) or context < 0:
        raise ValueError(f"context={context!r}: must be an integer >= 0 (tokens in the cache)")


def kv_cache_positions(arch: Architecture, context: int) -> int:
    """Cached positions per key/value head, summed over layers, after ``context`` tokens (a linear layer
    keeps none: its state is in :func:`kv_cache_bytes`)."""
    _check_context(context)
    return sum(
        layer_positions(arch.layer_attention(i), arch.window, arch.head_dim, _tokens(arch, i, context))
        for i in range(arch.depth)
    )


def _tokens(arch: Architecture, layer: int, context: int) -> int:
    """The tokens of ``context`` that reach ``layer``'s cache at most (dynamic depth routes layers 1..)."""
    if layer == 0 or arch.depth_capacity >= 1.0:
        return context
    return math.floor(arch.depth_capacity * context + 1e-9)


def kv_cache_bytes(arch: Architecture, context: int, batch: int = 1, bytes_per_value: int | None = None) -> int:
    """Bytes of the decode cache after ``context`` tokens for ``batch`` sequences: keys and values at
    ``bytes_per_value`` (default: the deployed precision's, :data:`VALUE_BYTES`), linear states in fp32."""
    _check_context(context)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch={batch!r}: must be an integer >= 1")
    value = VALUE_BYTES[arch.quant] if bytes_per_value is None else bytes_per_value
    d, groups = arch.head_dim, arch.kv_heads
    tail = 2 * (arch.width + 2 * groups * d) * value if arch.qkv_conv else 0  # Primer's last two q/k/v inputs
    total = 0
    for i in range(arch.depth):
        pattern, tokens = arch.layer_attention(i), _tokens(arch, i, context)
        if tokens == 0:
            continue  # a routed layer no token has reached keeps nothing yet
        if pattern == "linear":
            total += (d * d + d) * STATE_BYTES * groups
        else:
            total += layer_positions(pattern, arch.window, d, tokens) * 2 * d * value * groups
        total += tail
    return total * batch
