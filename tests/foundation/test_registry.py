"""Registries: unknown names list the known ones; a user's residual type / pattern works at once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from archbench import ATTENTION, RESIDUALS, Architecture, UnknownNameError, build
from archbench.registry import Registry
from archbench.search_space.attention import AttentionPattern
from archbench.search_space.residual import Connection, ResidualType, Sublayer


def test_unknown_names_list_known_ones() -> None:
    with pytest.raises(UnknownNameError) as info:
        RESIDUALS.get("pre-ln")
    assert str(info.value).startswith("unknown residual type 'pre-ln' (did you mean 'pre_ln'?); known: pre_ln")
    with pytest.raises(UnknownNameError, match="known: dense, sliding_window, block_sparse, linear"):
        ATTENTION.meta("flash")


def test_lazy_entries_resolve_to_classes() -> None:
    assert issubclass(RESIDUALS.get("laurel"), ResidualType)
    assert ATTENTION.meta("sliding_window") == {"uses_window": True}
    assert ATTENTION.meta("linear") == {"uses_window": False, "scores": False}


def test_double_registration_is_refused() -> None:
    reg: Registry = Registry("thing")
    reg.register("a", object())
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", object())


class HalfResidual(Connection):
    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.norm = torch.nn.LayerNorm(arch.width)

    def forward(self, x: torch.Tensor, f: Sublayer, rate: float) -> torch.Tensor:
        return x + 0.5 * f(self.norm(x))


class Half(ResidualType):
    def connection(self, arch: Architecture) -> Connection:
        return HalfResidual(arch)


class Local2(AttentionPattern):
    uses_window = True

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        s = q.shape[-2]
        i = torch.arange(s)
        mask = (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] < self.window)
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)


@pytest.fixture
def user_extensions() -> Iterator[None]:
    RESIDUALS.register("half", Half)
    ATTENTION.register("local2", Local2, uses_window=True)
    yield
    for reg, name in ((RESIDUALS, "half"), (ATTENTION, "local2")):
        reg._entries.pop(name)
        reg._meta.pop(name)


def test_user_registered_types_are_valid_and_build(user_extensions: None) -> None:
    arch = Architecture(depth=2, width=32, heads=2, residual="half", attention="local2", window=4, max_seq_len=16)
    assert arch.window == 4  # uses_window from the registration is honoured
    model = build(arch)
    out = model(torch.randint(0, 256, (2, 16)))
    assert out.shape == (2, 16, 256) and torch.isfinite(out).all()
