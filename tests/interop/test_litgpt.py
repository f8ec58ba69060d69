"""Export to LitGPT: the config loads with archbench's parameter count and, with mapped weights, its logits."""

from __future__ import annotations

import pytest
import torch
import yaml

litgpt = pytest.importorskip("litgpt")
from litgpt.model import GPT  # noqa: E402

from archbench.interop.litgpt import (  # noqa: E402
    CONFIG_NAME,
    litgpt_config,
    litgpt_state_dict,
    save_litgpt,
    save_litgpt_checkpoint,
)
from archbench.interop.table import NotExpressible  # noqa: E402
from archbench.search_space import Architecture  # noqa: E402
from archbench.search_space.model import count_params  # noqa: E402
from tests.interop.conftest import EXACT, TINY, saved, tokens, trained_like  # noqa: E402

SHAPES = {
    "llama-gqa": EXACT["litgpt"],
    "gelu-layernorm-bias": Architecture(**TINY, pos_encoding="rope", tie_embeddings=False),
    "gelu-rmsnorm-mqa-window": Architecture(
        **TINY, pos_encoding="rope", tie_embeddings=False, norm="rmsnorm", bias=False, kv_heads=1,
        attention="sliding_window", window=24,
    ),
    "swiglu-layernorm-bias": EXACT["litgpt"].replace(norm="layernorm", bias=True),
    # A hybrid layout: sliding_window_indices marks the windowed layers (here layers 0 and 2 of 3).
    "hybrid-every2-of-3": EXACT["litgpt"].replace(depth=3, attention="sliding_window", window=24, global_every=2),
}  # fmt: skip


@pytest.mark.parametrize("name", list(SHAPES))
def test_litgpt_config_loads_with_the_same_parameter_count(name: str, tmp_path) -> None:
    arch = SHAPES[name]
    path = save_litgpt(arch, tmp_path)
    assert path.name == CONFIG_NAME and yaml.safe_load(path.read_text()) == litgpt_config(arch)
    config = litgpt.Config.from_file(path)
    with torch.device("meta"):
        model = GPT(config)
    assert sum(p.numel() for p in model.parameters()) == count_params(trained_like(arch))


@pytest.mark.parametrize("name", list(SHAPES))
def test_litgpt_with_mapped_weights_gives_archbench_logits(name: str, tmp_path) -> None:
    arch = SHAPES[name]
    model, weights = saved(arch, tmp_path)
    save_litgpt(arch, tmp_path)
    ckpt = save_litgpt_checkpoint(weights, tmp_path)
    lit = GPT(litgpt.Config.from_file(tmp_path / CONFIG_NAME))
    lit.load_state_dict(torch.load(ckpt, weights_only=True), strict=True)
    idx = tokens(arch)
    with torch.no_grad():
        assert (model(idx) - lit.eval()(idx)).abs().max().item() <= 1e-4


@pytest.mark.parametrize(
    ("arch", "named"),
    [
        (EXACT["gpt2"], "pos_encoding='learned'"),
        (EXACT["litgpt"].replace(tie_embeddings=True), "tie_embeddings=True"),
        (SHAPES["gelu-layernorm-bias"].replace(bias=False), "bias=False"),
        (EXACT["litgpt"].replace(quant="bf16"), "quant='bf16'"),
        (EXACT["litgpt"].replace(residual="laurel"), "residual='laurel'"),
        (EXACT["litgpt"].replace(attention="linear", global_every=2), "attention='linear'"),
    ],
)
def test_litgpt_refusals_are_one_line(arch: Architecture, named: str) -> None:
    with pytest.raises(NotExpressible) as exc:
        litgpt_config(arch)
    assert named in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(NotExpressible):
        litgpt_state_dict(arch, {})
