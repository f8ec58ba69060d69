"""The size of a model's decode cache, from its :class:`Architecture` alone (no torch, no model).

What each layer keeps after ``context`` tokens is what :mod:`.kv_cache` and :mod:`.attention` really keep
(``tests/foundation/test_cache_size.py`` checks the formula against the built model's cache):

* ``dense``: every position, ``C``;
* ``sliding_window``: the last ``window - 1`` positions, ``min(C, W - 1)`` (a later query sees itself and
  the ``W - 1`` before it);
* ``block_sparse``: block 0 and the run from the block before the next query's own, at most ``3 W - 1``;
* ``linear``: no positions, a recurrent state ``phi(k) v^T`` ``(D, D)`` and ``sum phi(k)`` ``(D,)`` per
  kv head, fp32 whatever the model's dtype (the running sums overflow fp16).

Keys and values are ``kv_heads x head_dim`` each per position and layer (every layer of the depth, also
when blocks are shared: each sees other inputs), in the deployed activations' dtype: 2 bytes for
``bf16``/``fp16``, 4 otherwise (``int8``, ``int8_weight_only`` and ``fp8`` quantize the block Linears'
weights, and their outputs, the keys and values, stay fp32).

Callers use only :func:`kv_cache_positions` and :func:`kv_cache_bytes`.
"""

from __future__ import annotations

from archbench.search_space.architecture import Architecture

STATE_BYTES = 4  # linear attention's recurrent state is fp32 whatever the model's dtype
_ACTIVATION_BYTES = {"bf16": 2, "fp16": 2}  # every other quant keeps fp32 activations (see the docstring)


def _layer_positions(arch: Architecture, context: int) -> int:
    """Positions one layer keeps after ``context`` tokens (the next query is at position ``context``)."""
    w = arch.window
    if arch.attention == "dense":
        return context
    if arch.attention == "sliding_window":
        return min(context, w - 1)
    if arch.attention == "block_sparse":
        first = min(w, context)
        recent = max(0, context - max(w, (context // w - 1) * w))
        return min(context, first + recent)
    if arch.attention == "linear":
        return 0
    raise ValueError(f"no cache size known for attention {arch.attention!r}")


def kv_cache_positions(arch: Architecture, context: int) -> int:
    """Cached positions over all layers, per sequence and kv head, after ``context`` tokens."""
    if context < 0:
        raise ValueError(f"context={context}: must be >= 0")
    return arch.depth * _layer_positions(arch, context)


def kv_cache_bytes(arch: Architecture, context: int, batch: int = 1, bytes_per_value: int | None = None) -> int:
    """Bytes of the decode cache of ``batch`` sequences after ``context`` tokens: keys and values of every
    cached position, plus linear attention's states. ``bytes_per_value`` overrides the keys' and values'
    dtype size (default: from ``arch.quant``); the linear state stays fp32."""
    per_value = _ACTIVATION_BYTES.get(arch.quant, 4) if bytes_per_value is None else bytes_per_value
    kv = 2 * kv_cache_positions(arch, context) * arch.kv_heads * arch.head_dim * per_value
    state = 0
    if arch.attention == "linear":
        d = arch.head_dim
        state = arch.depth * arch.kv_heads * (d * d + d) * STATE_BYTES
    return batch * (kv + state)
