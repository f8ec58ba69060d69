"""The modules the second round of seed methods adds to the model family (issue 24), kept out of
``model.py`` so that the block and the trunk stay one readable file: relative position bias
(``pos_encoding=relative``), relaxed recursion's per-depth LoRA (``recursion_rank``) and dynamic depth's
router and causal capacity rule (``depth_capacity``). ``model.py`` wires them in.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archbench.search_space.architecture import Architecture

REL_MAX_DISTANCE = 128  # relative positions further apart than this share one learned bias (Shaw et al.)


class RelativeBias(nn.Module):
    """``pos_encoding=relative``: a learned bias per head and relative distance, clipped at
    ``REL_MAX_DISTANCE`` (Shaw et al., 2018), added to the attention scores: ``table[h, clip(j - i)]``.

    Huang et al. (2020) learn relative position *vectors* that interact with q and k; the scalar bias per
    head (as T5's, without its log buckets) is the part every attention kernel here can add (SDPA as a
    float mask, FlexAttention as a score_mod). Zero-initialised: training starts from NoPE.
    """

    def __init__(self, heads: int, max_seq_len: int) -> None:
        super().__init__()
        self.clip = min(REL_MAX_DISTANCE, max_seq_len - 1)
        self.table = nn.Parameter(torch.zeros(heads, 2 * self.clip + 1))

    def forward(self, q_pos: Tensor, kv_pos: Tensor) -> Tensor:
        """The bias ``(heads, Tq, Tk)`` between queries at ``q_pos`` and keys at ``kv_pos``."""
        rel = (kv_pos[None, :] - q_pos[:, None]).clamp(-self.clip, self.clip) + self.clip
        return self.table[:, rel]

    def score_mod(self) -> Any:
        table, c = self.table, self.clip

        def relative(score: Tensor, b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
            return score + table[h, (kv_idx - q_idx).clamp(-c, c) + c].to(score.dtype)

        return relative


class LowRank(nn.Module):
    """A rank-``r`` update ``x A^T B^T`` of one linear layer (LoRA); B starts at zero, so an adapted layer
    starts equal to the shared one (Relaxed Recursive Transformers, Bae et al., 2024)."""

    def __init__(self, n_in: int, n_out: int, rank: int) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.empty(rank, n_in))
        self.b = nn.Parameter(torch.empty(n_out, rank))
        nn.init.normal_(self.a, std=0.02)
        nn.init.zeros_(self.b)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(F.linear(x, self.a), self.b)


class LayerAdapter(nn.Module):
    """One depth's low-rank updates of its shared block: q/k/v, attention output and the FFN's linears."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        w, hidden, r = arch.width, arch.ffn_hidden, arch.recursion_rank
        kv_dim = arch.kv_heads * arch.head_dim
        self.qkv = LowRank(w, w + 2 * kv_dim, r)
        self.proj = LowRank(w, w, r)
        self.fc = LowRank(w, hidden, r)
        self.gate = LowRank(w, hidden, r) if arch.ffn_act == "swiglu" else None
        self.ffn_proj = LowRank(hidden, w, r)


def capacity_route(wanted: Tensor, start: int, before: Tensor, capacity: float) -> tuple[Tensor, Tensor]:
    """Which of the tokens at ``start ..`` go through a layer, and how many have gone through it after them.

    The causal capacity rule: token ``t`` goes through if its router wants it and fewer than
    ``floor(capacity * (t + 1))`` tokens of its sequence have gone through before it, so every prefix of
    every sequence stays within capacity. Greedy, yet computed without a loop: with ``W`` the running
    count of wanted tokens and ``cap`` the running limit, the count that went through is
    ``R(t) = min(R(t-1) + w(t), cap(t)) = min(before + W(t), min_{j<=t}(cap(j) - W(j)) + W(t))``.
    ``wanted``: (B, T) bool; ``before``: (B,) tokens already sent. Returns (B, T) bool and (B,) counts.
    """
    t = wanted.shape[1]
    steps = torch.arange(start + 1, start + t + 1, dtype=torch.float64, device=wanted.device)
    cap = torch.floor(steps * capacity).long()
    w = wanted.long().cumsum(dim=1)
    count = torch.minimum(before[:, None] + w, torch.cummin(cap[None, :] - w, dim=1).values + w)
    previous = torch.cat([before[:, None], count[:, :-1]], dim=1)
    return count > previous, count[:, -1]


class DepthRouter(nn.Module):
    """Dynamic depth (Mixture-of-Depths, Raposo et al. 2024; MindSkip): a linear router scores each token;
    a token is *wanted* when its score is at least the mean score of its sequence so far (the first token
    always is), wanted tokens go through the layer within the causal capacity rule of
    :func:`capacity_route`, and the layer's update is scaled by ``sigmoid(score)`` so the router learns
    from the loss. MoD's top-k over the sequence is not causal; both rules here are, so decoding is exact.
    Against the running mean, not a fixed threshold: a router whose scores all drift below 0 would send
    no token, get no gradient and skip its layer for good; a shift of every score changes nothing here."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.capacity = arch.depth_capacity
        self.score = nn.Linear(arch.width, 1)

    def forward(self, x: Tensor, start: int, before: Tensor, sums: Tensor) -> tuple[Tensor, ...]:
        """(B, T) routed mask, (B, T) gate, and after these tokens the (B,) counts sent and score sums.

        ``before``, ``sums``: the count sent and the (float64) sum of scores of the sequence before them."""
        logits = self.score(x).squeeze(-1)
        if x.is_meta:  # counting FLOPs on the meta device: no scores, so the most the rule lets through
            wanted = torch.ones(logits.shape, dtype=torch.bool)
            routed, after = capacity_route(wanted, start, torch.zeros(x.shape[0], dtype=torch.long), self.capacity)
            return routed, torch.sigmoid(logits), after, sums
        scores = logits.detach().double()
        running = sums[:, None] + scores.cumsum(dim=1)  # the sum up to and including each token
        seen = torch.arange(start, start + scores.shape[1], dtype=torch.float64, device=x.device)
        wanted = scores * seen >= running - scores  # score >= mean of the scores before it (always at t=0)
        routed, after = capacity_route(wanted, start, before, self.capacity)
        return routed, torch.sigmoid(logits), after, running[:, -1]


__all__ = ["DepthRouter", "LayerAdapter", "LowRank", "RelativeBias", "capacity_route"]
