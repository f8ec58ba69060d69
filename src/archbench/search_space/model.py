"""The model family: one readable file for the block and the two models (nanoGPT's shape).

``build(arch)`` gives a causal decoder LM; ``build(arch, num_classes=K)`` a bidirectional encoder with
a mean-pooled classification head. Every field of :class:`Architecture` is realised here:

* ``depth`` layers cycle over ``unique_layers`` distinct blocks (weight sharing across depth);
* ``width`` split evenly over ``heads``, keys and values over ``kv_heads`` (grouped-query attention);
  FFN hidden size ``round(ffn_ratio * width)`` for gelu, swiglu and
  relu2 (Primer's squared ReLU) alike (swiglu has three matrices, so more parameters at the same ratio);
* ``residual`` / ``drop_path`` via :mod:`.residual`; ``attention`` / ``window`` via :mod:`.attention`,
  per layer as the layout (``global_every``, ``global_last``) says: global layers dense, the rest cheap;
* ``pos_encoding``: learned absolute embeddings (starting from the sinusoidal table, see
  :func:`sinusoids`), rotary (RoPE on q and k), none (NoPE) or relative (a learned per-head bias on the
  attention scores by clipped relative distance, :class:`~.seed_modules.RelativeBias`);
* ``qkv_conv``: Primer's causal depthwise convolution (width 3) after the q, k and v projections;
* ``recursion_rank``: relaxed recursion, a per-depth LoRA of that rank on every linear layer of the
  shared blocks (:class:`~.seed_modules.LowRank`; 0 is plain sharing);
* ``depth_capacity``: dynamic depth, a router per layer (after the first) that sends at most that
  fraction of the tokens through it, causally (:class:`~.seed_modules.DepthRouter`); the rest skip it;
* ``tie_embeddings``, ``bias``, ``vocab_size``, ``max_seq_len``; ``norm`` picks LayerNorm or RMSNorm.

``quant`` is applied after training by :func:`archbench.search_space.quantize.quantize`.
Over 400 lines for a reason: the block, the trunk (with its dynamic-depth routing, which needs the
trunk's pattern, positions and per-layer caches) and both models stay one readable file; the seed
methods' own modules live in :mod:`.seed_modules`.
Building works under ``torch.device("meta")`` (nothing here reads parameter values at init).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archbench.search_space.architecture import Architecture
from archbench.search_space.attention import AttentionPattern, make_pattern
from archbench.search_space.kv_cache import ConvLayer, KVCache, LayerCache, RoutedLayer
from archbench.search_space.registries import RESIDUALS
from archbench.search_space.residual import Connection, ResidualType, make_norm
from archbench.search_space.seed_modules import DepthRouter, LayerAdapter, LowRank, RelativeBias

ValueMix = tuple[Tensor, int]  # (the per-layer λ parameter of shape (depth-1, 2), this layer's row)
POS_INIT_SCALE = 0.02  # learned position embeddings start as this times the sinusoidal table (as wte's std)
CONV_WIDTH = 3  # Primer's depthwise convolution: the token and the two before it


def sinusoids(n: int, d: int, device: torch.device | str | None = None) -> Tensor:
    """The ``(n, d)`` sinusoidal position table of Vaswani et al. (2017): sin on even, cos on odd features.

    Learned absolute embeddings start from it (times :data:`POS_INIT_SCALE`) instead of noise: from
    noise, each position's vector is learned separately from the gradient of its own slot, so learned
    positions lag every other encoding in a short run and catch up only later, which made the short
    training budget misrank them (proxy fidelity, README). From the table they start where position is
    already readable and stay fully learnable.
    """
    pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]
    freq = torch.pow(10000.0, -torch.arange(0, d, 2, device=device, dtype=torch.float32) / d)
    table = torch.zeros(n, d, device=device)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: d // 2])
    return table


@dataclass(frozen=True)
class DecodeSlot:
    """One layer's part of an incremental step: where the new tokens start and the cache they attend
    to (None: they are the prompt). The layer's cache after the step is *returned*, not written here:
    values flow through torch.compile's graphs, side effects on Python objects may not."""

    pos: int
    past: LayerCache | None


class Rotary(nn.Module):
    """Rotary position embedding (Su et al.), rotate-half form, cached up to ``max_seq_len``."""

    def __init__(self, head_dim: int, max_seq_len: int, base: float = 10000.0) -> None:
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        t = torch.arange(max_seq_len, dtype=torch.float32)
        freqs = torch.outer(t, inv_freq)
        self.register_buffer("cos", freqs.cos(), persistent=False)
        self.register_buffer("sin", freqs.sin(), persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:  # x: (B, H, S, D) at positions offset..
        s = x.shape[-2]
        cos, sin = self.cos[offset : offset + s].to(x.dtype), self.sin[offset : offset + s].to(x.dtype)
        x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
        return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


def _adapted(linear: nn.Linear, delta: LowRank | None, x: Tensor) -> Tensor:
    return linear(x) if delta is None else linear(x) + delta(x)


class SelfAttention(nn.Module):
    """Self-attention with a fused qkv projection (GPT-2's layout when ``kv_heads == heads``); with
    grouped queries the k and v parts have ``kv_heads`` heads each."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = arch.heads, arch.kv_heads, arch.head_dim
        self.kv_dim = arch.kv_heads * arch.head_dim
        self.qkv = nn.Linear(arch.width, arch.width + 2 * self.kv_dim, bias=arch.bias)
        self.proj = nn.Linear(arch.width, arch.width, bias=arch.bias)
        channels = arch.width + 2 * self.kv_dim
        # Primer: one width-3 kernel per channel of q, k and v (so per head), causal by left padding.
        self.conv = nn.Conv1d(channels, channels, CONV_WIDTH, groups=channels, bias=False) if arch.qkv_conv else None
        self.rel_bias = RelativeBias(arch.heads, arch.max_seq_len) if arch.pos_encoding == "relative" else None

    def convolve(self, h: Tensor, past: ConvLayer | None) -> tuple[Tensor, Tensor]:
        """The causal depthwise convolution of the projections ``h`` (B, S, C), continuing ``past``'s last
        two inputs (zeros at the start), and the last two inputs after ``h``."""
        assert self.conv is not None
        before = past.tail if past is not None else h.new_zeros(h.shape[0], CONV_WIDTH - 1, h.shape[-1])
        seq = torch.cat([before, h], dim=1)
        return self.conv(seq.transpose(1, 2)).transpose(1, 2), seq[:, -(CONV_WIDTH - 1) :]

    def forward(
        self,
        x: Tensor,
        pattern: AttentionPattern,
        rotary: Rotary | None,
        v_first: Tensor | None,
        v_mix: ValueMix | None,
        slot: DecodeSlot | None = None,
        lora: LayerAdapter | None = None,
    ) -> tuple[Tensor, Tensor, LayerCache | None]:
        """Returns the output, this layer's values (before any value-residual mixing) and its cache.

        With a ``slot`` the tokens of ``x`` sit at positions ``slot.pos ..``: they attend to the slot's
        cache (or are the prompt), and the layer's cache after them is returned (None without a slot).
        The cache holds the values *after* value-residual mixing: they are what later queries attend to.
        """
        b, s, w = x.shape
        h = _adapted(self.qkv, lora.qkv if lora is not None else None, x)
        past = slot.past if slot is not None else None
        tail: Tensor | None = None
        if self.conv is not None:
            h, tail = self.convolve(h, past if isinstance(past, ConvLayer) else None)
        if isinstance(past, ConvLayer):
            past = past.attn
        q, k, v = h.split([w, self.kv_dim, self.kv_dim], dim=-1)
        q = q.view(b, s, self.heads, self.head_dim).transpose(1, 2)
        k = k.view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        v = v.view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        v_own = v
        if v_first is not None and v_mix is not None:
            weights, row = v_mix
            lam = weights[row]
            v = lam[0] * v + lam[1] * v_first  # ResFormer: residual from the first layer's values
        offset = slot.pos if slot is not None else 0
        if rotary is not None:
            q, k = rotary(q, offset), rotary(k, offset)
        present: LayerCache | None = None
        # The bias only when there is one: a pattern registered by a user needs no bias argument.
        bias = () if self.rel_bias is None else (self.rel_bias,)
        if slot is None:
            y = pattern(q, k, v, *bias)
        elif past is None:
            y, present = pattern.prefill(q, k, v, *bias)
        else:
            y, present = pattern.step(q, k, v, past, slot.pos, *bias)  # type: ignore[arg-type]
        if present is not None and tail is not None:
            present = ConvLayer(present, tail)  # type: ignore[arg-type]
        out = _adapted(self.proj, lora.proj if lora is not None else None, y.transpose(1, 2).reshape(b, s, w))
        return out, v_own, present


class FeedForward(nn.Module):
    """GELU MLP, SwiGLU or squared-ReLU MLP (Primer: ``relu(x)^2``), hidden size ``round(ffn_ratio * width)``."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        hidden = arch.ffn_hidden
        self.act = arch.ffn_act
        self.swiglu = arch.ffn_act == "swiglu"
        self.fc = nn.Linear(arch.width, hidden, bias=arch.bias)
        self.gate = nn.Linear(arch.width, hidden, bias=arch.bias) if self.swiglu else None
        self.proj = nn.Linear(hidden, arch.width, bias=arch.bias)

    def linears(self) -> list[nn.Linear]:
        return [m for m in (self.fc, self.gate, self.proj) if m is not None]

    def forward(self, x: Tensor, lora: LayerAdapter | None = None) -> Tensor:
        fc = _adapted(self.fc, lora.fc if lora is not None else None, x)
        if self.gate is not None:
            hidden = F.silu(_adapted(self.gate, lora.gate if lora is not None else None, x)) * fc
        elif self.act == "relu2":
            hidden = F.relu(fc).square()
        else:
            hidden = F.gelu(fc, approximate="tanh")
        return _adapted(self.proj, lora.ffn_proj if lora is not None else None, hidden)


class Block(nn.Module):
    """One transformer layer: attention and FFN, each inside the residual type's connection."""

    def __init__(self, arch: Architecture, residual: ResidualType) -> None:
        super().__init__()
        self.attn = SelfAttention(arch)
        self.ffn = FeedForward(arch)
        self.attn_conn: Connection = residual.connection(arch)
        self.ffn_conn: Connection = residual.connection(arch)

    def forward(
        self,
        x: Tensor,
        pattern: AttentionPattern,
        rotary: Rotary | None,
        rate: float,
        v_first: Tensor | None = None,
        v_mix: ValueMix | None = None,
        slot: DecodeSlot | None = None,
        in_scale: float = 1.0,
        lora: LayerAdapter | None = None,
    ) -> tuple[Tensor, Tensor, LayerCache | None]:
        """The layer's output, its attention values and (with a ``slot``) its cache after the step.

        ``in_scale`` multiplies both sublayers' inputs (the residual type's :meth:`~.ResidualType.input_scale`);
        ``lora``: this depth's low-rank updates of the (shared) block.
        """
        values: list[Tensor] = []
        presents: list[LayerCache | None] = []

        def attend(h: Tensor) -> Tensor:
            out, v, present = self.attn(
                h if in_scale == 1.0 else in_scale * h, pattern, rotary, v_first, v_mix, slot, lora
            )
            values.append(v)
            presents.append(present)
            return out

        def ffn(h: Tensor) -> Tensor:
            return self.ffn(h if in_scale == 1.0 else in_scale * h, lora)

        x = self.attn_conn(x, attend, rate)
        x = self.ffn_conn(x, ffn, rate)
        return x, values[0], presents[0]


class Trunk(nn.Module):
    """Embeddings, ``depth`` layers over ``unique_layers`` blocks, and the residual type's extras."""

    def __init__(self, arch: Architecture, causal: bool) -> None:
        super().__init__()
        self.arch = arch
        self.causal = causal
        self.residual: ResidualType = RESIDUALS.get(arch.residual)()
        # One pattern per layer (the layer layout: global layers dense, the others arch.attention); the
        # pattern belongs to the depth, not to the (possibly shared) block. Patterns hold no parameters.
        made = {name: make_pattern(name, arch.window, causal) for name in set(arch.layer_patterns)}
        self.patterns: list[AttentionPattern] = [made[name] for name in arch.layer_patterns]
        self.wte = nn.Embedding(arch.vocab_size, arch.width)
        self.wpe = nn.Embedding(arch.max_seq_len, arch.width) if arch.pos_encoding == "learned" else None
        self.rotary = Rotary(arch.head_dim, arch.max_seq_len) if arch.pos_encoding == "rope" else None
        self.blocks = nn.ModuleList(Block(arch, self.residual) for _ in range(arch.unique_layers))
        # Dynamic depth: a router per layer after the first (the first sees every token, as MoD keeps
        # full-capacity blocks, and gives the value residual its values).
        self.routers = (
            nn.ModuleList(DepthRouter(arch) for _ in range(arch.depth - 1)) if arch.depth_capacity < 1.0 else None
        )
        # Relaxed recursion: each depth adapts its shared block by its own low-rank updates.
        self.adapters = nn.ModuleList(LayerAdapter(arch) for _ in range(arch.depth)) if arch.recursion_rank else None
        # Per-depth parameters stay per layer even when blocks are shared.
        self.value_mix = (
            nn.Parameter(torch.full((arch.depth - 1, 2), 0.5))
            if self.residual.value_residual and arch.depth > 1
            else None
        )
        if self.residual.depth_weighted_average:
            # dwa[i] weighs [embedding, out_0, ..., out_i]; identity init: all weight on out_i.
            self.dwa = nn.ParameterList(
                nn.Parameter(F.one_hot(torch.tensor(i + 1), i + 2).float()) for i in range(arch.depth)
            )
        else:
            self.dwa = None
        # DeepCrossAttention: per layer a vector that turns each earlier output into a weight (init 0: DenseFormer).
        self.dca = (
            nn.ParameterList(nn.Parameter(torch.zeros(arch.width)) for _ in range(arch.depth))
            if self.dwa is not None and self.residual.input_dependent_average
            else None
        )
        self.in_scales = [self.residual.input_scale(layer, arch) for layer in range(arch.depth)]
        self.norm_f = make_norm(arch) if self.residual.final_norm else None
        self._init_weights()

    def _init_weights(self) -> None:
        """GPT-2 init (normal 0.02; output projections scaled by 1/sqrt(2*depth); learned positions from
        the sinusoidal table), then the residual type's own (e.g. DeepNet's). Connection-owned parameters
        keep their constructor init."""
        arch = self.arch
        nn.init.normal_(self.wte.weight, std=0.02)
        if self.wpe is not None:
            with torch.no_grad():
                w = self.wpe.weight
                w.copy_(POS_INIT_SCALE * sinusoids(w.shape[0], w.shape[1], device=w.device))
        for block in self.blocks:
            for lin in (block.attn.qkv, block.attn.proj, *block.ffn.linears()):
                std = 0.02 / math.sqrt(2 * arch.depth) if lin in (block.attn.proj, block.ffn.proj) else 0.02
                nn.init.normal_(lin.weight, std=std)
                if lin.bias is not None:
                    nn.init.zeros_(lin.bias)
            if block.attn.conv is not None:  # identity (all weight on the current token): starts as plain attention
                with torch.no_grad():
                    block.attn.conv.weight.zero_()
                    block.attn.conv.weight[:, 0, -1] = 1.0
            self.residual.init_block(block, arch)
        for router in self.routers or ():
            # Scores start near 0 either side: about half the tokens are wanted, and every layer gets some
            # (a router that wants no token gets no gradient, see DepthRouter).
            nn.init.normal_(router.score.weight, std=0.02)
            nn.init.zeros_(router.score.bias)

    def drop_rate(self, layer: int) -> float:
        """Stochastic-depth rate of ``layer``: linear from 0 to ``drop_path`` (Huang et al., 2016)."""
        depth = self.arch.depth
        return self.arch.drop_path * (layer / (depth - 1) if depth > 1 else 1.0)

    def lr_scales(self) -> dict[int, float]:
        """Learning-rate multipliers by ``id`` of parameter, as the residual type asks (Depth-µP's blocks)."""
        scale = self.residual.block_lr_scale(self.arch)
        return {} if scale == 1.0 else {id(p): scale for p in self.blocks.parameters()}

    def depth_average(self, history: list[Tensor], layer: int) -> Tensor:
        """DenseFormer's weighted average of ``history`` (embedding and block outputs so far) after ``layer``;
        with DeepCrossAttention each weight also reads its own output, token by token:
        ``w_j = dwa_j + <dca, rmsnorm(h_j)>``."""
        weights = self.dwa[layer]  # type: ignore[index]
        if self.dca is None:
            return sum(weights[j] * h for j, h in enumerate(history))  # type: ignore[return-value]
        stack = torch.stack(history)  # (n, B, S, W)
        read = torch.einsum("nbsw,w->nbs", F.rms_norm(stack, (stack.shape[-1],)), self.dca[layer])
        return ((weights[:, None, None] + read)[..., None] * stack).sum(0)  # elementwise, as DenseFormer's sum

    def forward(self, idx: Tensor) -> Tensor:
        """Hidden states of ``idx``."""
        return self.run(idx)[0]

    def run(self, idx: Tensor, slots: list[DecodeSlot] | None = None) -> tuple[Tensor, tuple[LayerCache | None, ...]]:
        """Hidden states of ``idx`` and each layer's cache; with ``slots`` (one per layer) an incremental
        step at ``slots[0].pos`` (without, the caches are None)."""
        arch = self.arch
        s = idx.shape[1]
        pos = slots[0].pos if slots else 0
        if pos + s > arch.max_seq_len:
            raise ValueError(f"sequence length {pos + s} exceeds max_seq_len={arch.max_seq_len}")
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(pos, pos + s, device=idx.device))
        history: list[Tensor] = [x]
        presents: list[LayerCache | None] = []
        v_first: Tensor | None = None
        for layer in range(arch.depth):
            block = self.blocks[layer % arch.unique_layers]
            # The whole parameter and a row index, not a slice: a slice of a leaf made under no_grad is a
            # tensor that requires grad but has no grad_fn, which torch's module hooks refuse.
            v_mix = (self.value_mix, layer - 1) if self.value_mix is not None and layer > 0 else None
            slot = slots[layer] if slots else None
            rate, in_scale = self.drop_rate(layer), self.in_scales[layer]
            lora = self.adapters[layer] if self.adapters is not None else None
            if self.routers is not None and layer > 0:
                x, present = self.routed(self.routers[layer - 1], block, x, layer, v_first, v_mix, slot, lora)
                v = x  # unused: only layer 0's values feed the value residual
            else:
                pattern = self.patterns[layer]
                x, v, present = block(x, pattern, self.rotary, rate, v_first, v_mix, slot, in_scale, lora)
            presents.append(present)
            if layer == 0 and self.residual.value_residual:
                v_first = v
            if self.dwa is not None:
                history.append(x)
                x = self.depth_average(history, layer)
        if self.norm_f is not None:
            x = self.norm_f(x)
        return x, tuple(presents)

    def routed(
        self,
        router: DepthRouter,
        block: Block,
        x: Tensor,
        layer: int,
        v_first: Tensor | None,
        v_mix: ValueMix | None,
        slot: DecodeSlot | None,
        lora: LayerAdapter | None,
    ) -> tuple[Tensor, LayerCache | None]:
        """``block`` on the tokens ``router`` sends through it, gathered per sequence (skipped tokens cost
        nothing), the rest unchanged. The layer sees each sequence's routed tokens as its own sequence:
        its attention, convolution and positions (rotary, relative) run over them, in order."""
        past = slot.past if slot is not None else None
        assert past is None or isinstance(past, RoutedLayer)
        b = x.shape[0]
        before = past.routed if past is not None else torch.zeros(b, dtype=torch.long, device=x.device)
        sums = past.score_sum if past is not None else torch.zeros(b, dtype=torch.float64, device=x.device)
        routed, gate, after, sums = router(x, slot.pos if slot is not None else 0, before, sums)
        delta = torch.zeros_like(x)
        seqs: list[Any] = []
        for i in range(b):
            idx = routed[i].nonzero().squeeze(1).to(x.device)
            seq_past = past.seqs[i] if past is not None else None
            if idx.numel() == 0:
                seqs.append(seq_past)
                continue
            xi = x[i : i + 1, idx]
            vi = v_first[i : i + 1, :, idx] if v_first is not None else None
            si = DecodeSlot(int(before[i]), seq_past) if slot is not None else None
            rate, in_scale = self.drop_rate(layer), self.in_scales[layer]
            yi, _, present = block(xi, self.patterns[layer], self.rotary, rate, vi, v_mix, si, in_scale, lora)
            delta[i, idx] = gate[i, idx, None] * (yi[0] - xi[0])
            seqs.append(present)
        return x + delta, (RoutedLayer(tuple(seqs), after, sums) if slot is not None else None)


class DecoderLM(nn.Module):
    """Causal decoder language model: ``forward(idx) -> logits (B, S, vocab)``."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        self.trunk = Trunk(arch, causal=True)
        self.lm_head = nn.Linear(arch.width, arch.vocab_size, bias=False)
        if arch.tie_embeddings:
            self.lm_head.weight = self.trunk.wte.weight
        else:
            nn.init.normal_(self.lm_head.weight, std=0.02)

    def forward(self, idx: Tensor) -> Tensor:
        return self.lm_head(self.trunk(idx))

    def decode(self, idx: Tensor, past: KVCache | None = None) -> tuple[Tensor, KVCache]:
        """Incremental decoding: logits of the new tokens ``idx`` (B, T) and the cache after them.

        ``past=None`` treats ``idx`` as the prompt (prefill: the same kernels as ``forward``); otherwise
        ``idx`` continues the sequence ``past`` has seen. ``past`` is never modified, so one warm cache
        can be stepped from many times. The logits equal ``forward`` on the whole sequence.
        """
        pos = 0 if past is None else past.pos
        layers = past.layers if past is not None else (None,) * self.arch.depth
        x, present = self.trunk.run(idx, [DecodeSlot(pos, layer) for layer in layers])
        assert all(p is not None for p in present), "every layer must leave its cache"
        return self.lm_head(x), KVCache(present, pos + idx.shape[1])  # type: ignore[arg-type]

    @torch.no_grad()
    def generate(self, prompt: Tensor, new_tokens: int) -> tuple[Tensor, Tensor]:
        """Greedy decoding of ``new_tokens`` after ``prompt`` (B, P) with the cache: the tokens
        (B, P + new_tokens) and the logits that chose each new token (B, new_tokens, vocab)."""
        logits, cache = self.decode(prompt)
        tokens, chosen = [prompt], []
        for i in range(new_tokens):
            last = logits[:, -1]
            chosen.append(last)
            nxt = last.argmax(dim=-1, keepdim=True)
            tokens.append(nxt)
            if i + 1 < new_tokens:
                logits, cache = self.decode(nxt, cache)
        return torch.cat(tokens, dim=1), torch.stack(chosen, dim=1)


class EncoderClassifier(nn.Module):
    """Bidirectional encoder with a mean-pooled linear head: ``forward(idx) -> logits (B, classes)``.

    ``tie_embeddings`` has nothing to tie here (there is no output vocabulary) and is ignored.
    """

    def __init__(self, arch: Architecture, num_classes: int) -> None:
        super().__init__()
        self.arch = arch
        self.trunk = Trunk(arch, causal=False)
        self.head = nn.Linear(arch.width, num_classes, bias=True)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, idx: Tensor) -> Tensor:
        return self.head(self.trunk(idx).mean(dim=1))


def build(
    arch: Architecture | Mapping[str, Any],
    num_classes: int | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> nn.Module:
    """The ``nn.Module`` for ``arch``: a decoder LM, or an encoder classifier when ``num_classes`` is set.

    ``arch`` may be a mapping of fields (as ``hydra.utils.instantiate`` passes from an exported config);
    ``provenance`` (what an exported config records about where the shape was measured) is ignored.
    """
    if not isinstance(arch, Architecture):
        arch = Architecture.from_dict(dict(arch))
    if num_classes is None:
        return DecoderLM(arch)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes={num_classes!r}: must be an integer >= 2")
    return EncoderClassifier(arch, num_classes)


def count_params(model: nn.Module) -> int:
    """Number of distinct parameters (tied or shared weights counted once); works on meta."""
    return sum(p.numel() for p in model.parameters())
