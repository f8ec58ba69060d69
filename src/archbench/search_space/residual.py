"""Residual types: how a block's two sublayers (attention, FFN) join the residual stream.

A :class:`ResidualType` decides these things, each as in its paper (abstracts in shared/seeds):

* the *connection* around each sublayer ``f`` (where the norm sits, any gates or scales);
* a per-layer factor on each sublayer's input (LayerNorm Scaling's 1/sqrt(l));
* whether attention mixes in the first layer's values (ResFormer's value residual);
* whether the model averages over earlier block outputs after each block (DenseFormer's DWA), and
  whether the weights of that average depend on the input (DeepCrossAttention);
* whether the trunk ends with a final norm, and any special weight initialisation (DeepNet);
* a learning-rate multiplier for the blocks' parameters, which the trainer applies (Depth-µP).

Stochastic depth (``drop_path``) drops the sublayer branch per sample, in training only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from archbench.search_space.architecture import Architecture
from archbench.search_space.registries import RESIDUALS

Sublayer = Callable[[Tensor], Tensor]


def make_norm(arch: Architecture) -> nn.Module:
    """The architecture's norm over ``width`` features (LayerNorm bias follows ``arch.bias``)."""
    if arch.norm == "rmsnorm":
        return nn.RMSNorm(arch.width, eps=1e-5)
    return nn.LayerNorm(arch.width, eps=1e-5, bias=arch.bias)


def drop_path(x: Tensor, rate: float, training: bool) -> Tensor:
    """Stochastic depth: zero the branch for a random subset of samples, rescale the rest."""
    if rate <= 0.0 or not training:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class Connection(nn.Module):
    """``forward(x, f, rate)``: the residual stream after sublayer ``f``."""

    def forward(self, x: Tensor, f: Sublayer, rate: float) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class PreNorm(Connection):
    """``x + scale * f(norm(x))``: pre-LN (GPT-2) with ``scale = 1``; Depth-µP's branch multiplier otherwise."""

    def __init__(self, arch: Architecture, scale: float = 1.0) -> None:
        super().__init__()
        self.norm = make_norm(arch)
        self.scale = scale

    def forward(self, x: Tensor, f: Sublayer, rate: float) -> Tensor:
        branch = drop_path(f(self.norm(x)), rate, self.training)
        return x + (branch if self.scale == 1.0 else self.scale * branch)


class LayerScaleConnection(Connection):
    """``x + diag(lambda) f(norm(x))`` with a learned per-channel ``lambda`` (CaiT's LayerScale)."""

    def __init__(self, arch: Architecture, init: float) -> None:
        super().__init__()
        self.norm = make_norm(arch)
        self.scale = nn.Parameter(torch.full((arch.width,), init))

    def forward(self, x: Tensor, f: Sublayer, rate: float) -> Tensor:
        return x + self.scale * drop_path(f(self.norm(x)), rate, self.training)


class PostNorm(Connection):
    """``norm(alpha * x + f(x))``: post-LN (alpha = 1, Vaswani et al.) or DeepNorm (alpha > 1)."""

    def __init__(self, arch: Architecture, alpha: float = 1.0) -> None:
        super().__init__()
        self.norm = make_norm(arch)
        self.alpha = alpha

    def forward(self, x: Tensor, f: Sublayer, rate: float) -> Tensor:
        return self.norm(self.alpha * x + drop_path(f(x), rate, self.training))


class ReZeroGate(Connection):
    """``x + g * f(x)`` with a scalar gate ``g`` initialised to 0 and no norm (Bachlechner et al.)."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.gate = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor, f: Sublayer, rate: float) -> Tensor:
        return x + self.gate * drop_path(f(x), rate, self.training)


class LaurelConnection(Connection):
    """LAuReL-RW+LR: ``a * f(norm(x)) + b * (x + B A x)`` (Menghani et al., 2024).

    ``a`` and ``b`` are learned scalars (init 1, so it starts as pre-LN); ``B A`` is a learned
    low-rank map of rank ``min(16, width)`` with ``B`` initialised to zero.
    """

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.norm = make_norm(arch)
        self.a = nn.Parameter(torch.ones(()))
        self.b = nn.Parameter(torch.ones(()))
        rank = min(16, arch.width)
        self.down = nn.Linear(arch.width, rank, bias=False)
        self.up = nn.Linear(rank, arch.width, bias=False)
        nn.init.zeros_(self.up.weight)

    def forward(self, x: Tensor, f: Sublayer, rate: float) -> Tensor:
        branch = drop_path(f(self.norm(x)), rate, self.training)
        return self.a * branch + self.b * (x + self.up(self.down(x)))


class ResidualType:
    """A residual scheme. Subclass and register with ``@RESIDUALS.register(name)`` to add one."""

    value_residual = False  # attention adds the first layer's values (ResFormer)
    depth_weighted_average = False  # DenseFormer's DWA after every block
    input_dependent_average = False  # the DWA's weights also read the input (DeepCrossAttention); needs the DWA
    final_norm = True  # norm the trunk's output before the head

    def connection(self, arch: Architecture) -> Connection:
        return PreNorm(arch)

    def init_block(self, block: nn.Module, arch: Architecture) -> None:
        """Hook for schemes that need their own initialisation; the default keeps GPT-2's."""

    def input_scale(self, layer: int, arch: Architecture) -> float:
        """Factor on both sublayer inputs of ``layer`` (0-based; per layer, so shared blocks get each depth's)."""
        return 1.0

    def block_lr_scale(self, arch: Architecture) -> float:
        """Learning-rate multiplier the trainer applies to every parameter of the blocks (1: none)."""
        return 1.0


@RESIDUALS.register("pre_ln")
class PreLN(ResidualType):
    """Pre-LN: norm inside the branch, a clean identity path, and a final norm."""


@RESIDUALS.register("post_ln")
class PostLN(ResidualType):
    """Post-LN (the original Transformer): norm after the addition; the output is already normed."""

    final_norm = False

    def connection(self, arch: Architecture) -> Connection:
        return PostNorm(arch)


@RESIDUALS.register("deepnet")
class DeepNet(ResidualType):
    """DeepNorm (Wang et al., 2022): ``norm(alpha x + f(x))`` plus beta-scaled Xavier init.

    Decoder-only constants for N layers: ``alpha = (2N)^(1/4)``, ``beta = (8N)^(-1/4)``; beta scales the
    FFN, value and output projections, queries and keys keep gain 1.
    """

    final_norm = False

    @staticmethod
    def constants(depth: int) -> tuple[float, float]:
        return (2 * depth) ** 0.25, (8 * depth) ** -0.25

    def connection(self, arch: Architecture) -> Connection:
        return PostNorm(arch, alpha=self.constants(arch.depth)[0])

    def init_block(self, block: nn.Module, arch: Architecture) -> None:
        beta = self.constants(arch.depth)[1]
        w = arch.width
        with torch.no_grad():
            qkv = block.attn.qkv.weight  # rows [q (w); k (kv_dim); v (kv_dim)]
            split = w + block.attn.kv_dim
            std_qk = math.sqrt(2.0 / (w + w))
            qkv[:split].normal_(0.0, std_qk)
            qkv[split:].normal_(0.0, beta * std_qk)
            for lin in (block.attn.proj, *block.ffn.linears()):
                fan_out, fan_in = lin.weight.shape
                lin.weight.normal_(0.0, beta * math.sqrt(2.0 / (fan_in + fan_out)))


@RESIDUALS.register("rezero")
class ReZero(ResidualType):
    """ReZero: no norms in the blocks, each branch behind a zero-initialised gate.

    The trunk keeps one final norm before the head (the ``norm`` field picks it).
    """

    def connection(self, arch: Architecture) -> Connection:
        return ReZeroGate(arch)


@RESIDUALS.register("value_residual")
class ValueResidual(ResidualType):
    """ResFormer (Zhou et al., 2024): pre-LN blocks whose attention uses ``l1 v_n + l2 v_1``.

    ``v_1`` is the first layer's value projection; ``l1, l2`` are learned per layer, init 0.5 each.
    """

    value_residual = True


@RESIDUALS.register("denseformer")
class DenseFormer(ResidualType):
    """DenseFormer (Pagliardini et al., 2024): pre-LN blocks; after block i the stream becomes a
    learned weighted average of the embedding and every block output so far (init: identity)."""

    depth_weighted_average = True


@RESIDUALS.register("laurel")
class Laurel(ResidualType):
    """LAuReL's learned augmented residual around every sublayer (see :class:`LaurelConnection`)."""

    def connection(self, arch: Architecture) -> Connection:
        return LaurelConnection(arch)


@RESIDUALS.register("layerscale")
class LayerScale(ResidualType):
    """LayerScale (Touvron et al., 2021, CaiT): pre-LN blocks, each branch times a learned per-channel
    vector initialised to :meth:`init_value` of the depth."""

    @staticmethod
    def init_value(depth: int) -> float:
        """CaiT's epsilon: 0.1 up to depth 18, 1e-5 up to 24, 1e-6 deeper (its layers are blocks, as here)."""
        return 0.1 if depth <= 18 else 1e-5 if depth <= 24 else 1e-6

    def connection(self, arch: Architecture) -> Connection:
        return LayerScaleConnection(arch, self.init_value(arch.depth))


@RESIDUALS.register("ln_scaling")
class LayerNormScaling(ResidualType):
    """LayerNorm Scaling (Sun et al., 2025, The Curse of Depth): pre-LN whose normed input to layer l
    (1-based) is scaled by 1/sqrt(l), so the stream's variance stops growing exponentially with depth."""

    def input_scale(self, layer: int, arch: Architecture) -> float:
        return 1.0 / math.sqrt(layer + 1)


@RESIDUALS.register("depth_mup")
class DepthMuP(ResidualType):
    """Depth-µP (Yang et al., 2023, Tensor Programs VI; Bordelon et al., 2024): pre-LN branches times
    1/sqrt(depth), and Adam's learning rate for the blocks times 1/sqrt(depth) (TP-VI's rule for Adam).

    The branch multiplier takes the place of GPT-2's depth-scaled init of the output projections, which
    start at the same std as every other matrix (depth-independent init, as in the papers).
    """

    def connection(self, arch: Architecture) -> Connection:
        return PreNorm(arch, scale=1.0 / math.sqrt(arch.depth))

    def init_block(self, block: nn.Module, arch: Architecture) -> None:
        with torch.no_grad():
            for lin in (block.attn.proj, block.ffn.proj):
                lin.weight.normal_(0.0, 0.02)

    def block_lr_scale(self, arch: Architecture) -> float:
        return 1.0 / math.sqrt(arch.depth)


@RESIDUALS.register("dca")
class DeepCrossAttention(DenseFormer):
    """DeepCrossAttention (Heddes et al., 2025): DenseFormer's average whose weight on each earlier output
    also reads that output, token by token: ``w_j(t) = a_j + <g, rmsnorm(h_j(t))>`` (one learned ``g`` per
    layer, init 0: it starts as DenseFormer, and with ``g = 0`` it is DenseFormer). See ``Trunk``."""

    input_dependent_average = True
