"""The model family's extension points, importable without torch.

Built-ins are registered lazily (by import path) so that validating an Architecture, or reading the
leaderboard, never imports torch. Users add their own with the decorators, e.g.
``@RESIDUALS.register("my_residual")`` on a :class:`archbench.search_space.residual.ResidualType`.
"""

from __future__ import annotations

from archbench.registry import Registry

RESIDUALS: Registry = Registry("residual type")
ATTENTION: Registry = Registry("attention pattern")

_RES = "archbench.search_space.residual"
for _name, _cls in [
    ("pre_ln", "PreLN"),
    ("post_ln", "PostLN"),
    ("deepnet", "DeepNet"),
    ("rezero", "ReZero"),
    ("value_residual", "ValueResidual"),
    ("denseformer", "DenseFormer"),
    ("laurel", "Laurel"),
    ("layerscale", "LayerScale"),
    ("ln_scaling", "LayerNormScaling"),
    ("depth_mup", "DepthMuP"),
    ("dca", "DeepCrossAttention"),
]:
    RESIDUALS.register_lazy(_name, f"{_RES}:{_cls}")

_ATT = "archbench.search_space.attention"
ATTENTION.register_lazy("dense", f"{_ATT}:Dense", uses_window=False)
ATTENTION.register_lazy("sliding_window", f"{_ATT}:SlidingWindow", uses_window=True)
ATTENTION.register_lazy("block_sparse", f"{_ATT}:BlockSparse", uses_window=True)
ATTENTION.register_lazy("linear", f"{_ATT}:Linear", uses_window=False, scores=False)
