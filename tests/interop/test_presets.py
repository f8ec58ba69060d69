"""Presets: each published shape has its published parameter count, and works wherever a file does."""

from __future__ import annotations

import pytest
import torch

from archbench.cli.main import compose, main
from archbench.errors import ConfigError
from archbench.search_space import build, load_arch
from archbench.search_space.model import count_params
from archbench.search_space.presets import PRESETS, preset

# Published counts (shared/research/export-targets.md; model cards / safetensors index of each hub id).
PUBLISHED = {
    "gpt2": 124_439_808,
    "gpt2-medium": 354_823_168,
    "gpt2-large": 774_030_080,
    "gpt2-xl": 1_557_611_200,
    "smollm2-135m": 134_515_008,
    "smollm2-360m": 361_821_120,
    "tinyllama-1.1b": 1_100_048_384,
    "llama-3.2-1b": 1_235_814_400,
    "llama-3.2-3b": 3_212_749_824,
    "llama-2-7b": 6_738_415_616,
    "llama-3-8b": 8_030_261_248,
    "mistral-7b": 7_241_732_096,
}
REQUIRED = {"gpt2", "gpt2-medium", "llama-3.2-1b", "llama-3-8b", "mistral-7b", "smollm2-135m"}


def test_every_preset_has_a_published_count_here() -> None:
    assert set(PRESETS.names()) >= REQUIRED
    assert set(PRESETS.names()) == set(PUBLISHED)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_preset_has_its_published_parameter_count(name: str) -> None:
    with torch.device("meta"):  # counted from the shapes: no 8B parameters allocated
        model = build(load_arch(f"preset:{name}"))
    assert count_params(model) == PUBLISHED[name] == preset(name).params


def test_exportable_presets_export_to_their_own_class() -> None:
    pytest.importorskip("transformers")
    from archbench.interop.hf import hf_target

    families = {name: hf_target(preset(name).arch).name for name in PUBLISHED}
    assert families["gpt2-xl"] == "gpt2" and families["llama-3-8b"] == "llama" and families["mistral-7b"] == "mistral"


def test_an_unknown_preset_is_one_line_listing_the_known_ones() -> None:
    with pytest.raises(ConfigError) as exc:
        load_arch("preset:llama-4")
    msg = str(exc.value)
    assert "\n" not in msg and "unknown preset 'llama-4'" in msg and "llama-3-8b" in msg


@pytest.mark.parametrize("argv", [["build", "preset:nope"], ["evaluate", "preset:nope"], ["measure", "preset:nope"]])
def test_an_unknown_preset_through_the_cli_exits_2(argv, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown preset 'nope'" in err and "gpt2-medium" in err


def test_build_takes_a_preset(capsys) -> None:
    assert main(["build", "preset:smollm2-135m"]) == 0
    assert "params=134,515,008" in capsys.readouterr().out


SMALL_GPTS = """name: gpt_sizes
fields:
  depth: [12, 24]
  width: [768, 1024]
  heads: [12, 16]
  ffn_ratio: 4.0
  pos_encoding: learned
  vocab_size: 50257
  max_seq_len: 1024
"""


def test_seed_archs_take_presets(tmp_path) -> None:
    from archbench.cli.search import config_from_dict

    space = tmp_path / "gpt_sizes.yaml"
    space.write_text(SMALL_GPTS)
    config = config_from_dict(compose([f"space={space}", "search.seed_archs=[preset:gpt2,preset:gpt2-medium]"]))
    assert config.seed_archs == (preset("gpt2").arch, preset("gpt2-medium").arch)
    with pytest.raises(ConfigError, match=r"seed architecture \w+ \(L30 d576.*is not in space gpt_sizes"):
        config_from_dict(compose([f"space={space}", "search.seed_archs=[preset:smollm2-135m]"]))
