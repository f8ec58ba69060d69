"""The contract of a residual type, run on every entry of the registry: registering one tests it.

A residual type is part of an architecture's identity (it round-trips through a config and changes the
arch_id), builds into the decoder and the encoder, trains (every parameter learns, the loss falls) and
decodes from a cache exactly as the full forward pass computes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from archbench import RESIDUALS, Architecture, build, load_arch, save_config
from archbench.search_space.residual import Connection, ResidualType

VOCAB, SEQ = 61, 16
NAMES = RESIDUALS.names()


def arch(residual: str, **kw: object) -> Architecture:
    base: dict[str, object] = dict(depth=2, width=32, heads=4, vocab_size=VOCAB, max_seq_len=32, ffn_ratio=2.0)
    return Architecture(residual=residual, **{**base, **kw})  # type: ignore[arg-type]


def lm_loss(model: torch.nn.Module, idx: torch.Tensor) -> torch.Tensor:
    logits = model(idx[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), idx[:, 1:].reshape(-1))


@pytest.mark.parametrize("name", NAMES)
def test_the_entry_is_a_residual_type_that_makes_a_connection(name: str) -> None:
    cls = RESIDUALS.get(name)
    assert isinstance(cls, type) and issubclass(cls, ResidualType)
    connection = cls().connection(arch(name))
    assert isinstance(connection, Connection)


@pytest.mark.parametrize("name", NAMES)
def test_the_architecture_round_trips_and_the_residual_is_part_of_its_identity(name: str, tmp_path: Path) -> None:
    a = arch(name)
    assert Architecture.from_dict(a.to_dict()) == a
    save_config(a, tmp_path / "a.yaml")
    back = load_arch(tmp_path / "a.yaml")
    assert back == a and back.arch_id == a.arch_id
    others = {arch(other).arch_id for other in NAMES if other != name}
    assert a.arch_id not in others


@pytest.mark.parametrize("name", NAMES)
def test_it_trains_in_the_decoder_every_parameter_learns_and_the_loss_falls(name: str) -> None:
    torch.manual_seed(0)
    model = build(arch(name)).train()
    idx = torch.randint(0, VOCAB, (4, SEQ + 1), generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = float(lm_loss(model, idx).detach())
    assert torch.isfinite(torch.tensor(first))
    for step in range(12):  # one fixed batch: any working model memorises some of it
        opt.zero_grad()
        lm_loss(model, idx).backward()
        if step == 1:  # after one step every parameter learns (zero-initialised gates pass nothing before it)
            for pname, p in model.named_parameters():
                assert p.grad is not None and torch.isfinite(p.grad).all(), f"{pname}: no or a non-finite gradient"
                assert p.grad.abs().sum() > 0, f"{pname} gets a zero gradient"
        opt.step()
    with torch.no_grad():
        assert float(lm_loss(model, idx)) < 0.7 * first


@pytest.mark.parametrize("name", NAMES)
def test_it_builds_into_the_encoder_classifier(name: str) -> None:
    torch.manual_seed(0)
    model = build(arch(name), num_classes=5)
    out = model(torch.randint(0, VOCAB, (3, SEQ)))
    assert out.shape == (3, 5) and torch.isfinite(out).all()
    F.cross_entropy(out, torch.arange(3)).backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_cached_decoding_equals_the_full_forward(name: str) -> None:
    torch.manual_seed(0)
    model = build(arch(name, depth=3, pos_encoding="rope")).eval()
    with torch.no_grad():  # off the initialisation, so that zero-initialised gates matter
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    prompt = torch.randint(0, VOCAB, (2, 5), generator=torch.Generator().manual_seed(1))
    tokens, chosen = model.generate(prompt, 12)
    with torch.no_grad():
        full = model(tokens[:, :-1])[:, 4:]
    torch.testing.assert_close(chosen, full, atol=1e-5, rtol=0)
