"""The export format: instantiate-able by Hydra, loadable, and safe against foreign _target_s."""

from __future__ import annotations

from pathlib import Path

import hydra.utils
import pytest
import torch
import yaml
from hypothesis import given, settings

from archbench import Architecture, ConfigError, build, dump_config, load_arch, save_config
from archbench.search_space.model import DecoderLM, EncoderClassifier, count_params
from tests.foundation.test_architecture import architectures


def test_hydra_instantiate_builds_the_model(tmp_path: Path) -> None:
    arch = Architecture(depth=3, width=48, heads=3, residual="laurel", attention="sliding_window", window=16)
    path = save_config(arch, tmp_path / "sub" / "arch.yaml", provenance={"val_loss": 1.5, "device_name": "cpu"})
    cfg = yaml.safe_load(path.read_text())
    assert cfg["_target_"] == "archbench.build"
    model = hydra.utils.instantiate(cfg)
    assert isinstance(model, DecoderLM) and model.arch == arch
    assert count_params(model) == count_params(build(arch))
    assert path.read_text().startswith(f"# archbench architecture {arch.arch_id}")
    assert load_arch(path) == arch


def test_classifier_configs(tmp_path: Path) -> None:
    arch = Architecture(depth=1, width=32, heads=2)
    path = save_config(arch, tmp_path / "clf.yaml", num_classes=10)
    model = hydra.utils.instantiate(yaml.safe_load(path.read_text()))
    assert isinstance(model, EncoderClassifier)
    assert model(torch.zeros(2, 5, dtype=torch.long)).shape == (2, 10)
    assert load_arch(path) == arch


@given(architectures())
@settings(max_examples=60, deadline=None)
def test_export_load_round_trip(arch: Architecture) -> None:
    cfg = yaml.safe_load(dump_config(arch))
    from archbench.search_space.export import arch_from_config

    assert arch_from_config(cfg) == arch


def test_load_accepts_bare_mappings(tmp_path: Path) -> None:
    arch = Architecture(depth=2)
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"arch": arch.to_dict()}))
    (tmp_path / "b.yaml").write_text(arch.to_yaml())
    assert load_arch(tmp_path / "a.yaml") == arch == load_arch(tmp_path / "b.yaml")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"_target_": "os.system", "arch": {}}, "refusing _target_='os.system'"),
        ({"_target_": "archbench.build", "arch": {"depth": {"_target_": "os.system", "_args_": ["id"]}}},
         "refusing nested arch.depth._target_='os.system'"),
        ({"_target_": "archbench.build", "arch": {}, "provenance": {"x": {"_target_": "builtins.eval"}}},
         "refusing nested provenance.x._target_"),
        ({"_target_": "archbench.build", "arch": {}, "_partial_": True}, "unknown keys ['_partial_']"),
        ({"_target_": "archbench.build"}, "missing 'arch:'"),
        ({"_target_": "archbench.build", "arch": {"depth": 0}}, "depth=0: must be an integer >= 1"),
        ({"_target_": "archbench.build", "arch": {"dpth": 2}}, "did you mean 'depth'"),
        ([1, 2], "expected a mapping"),
    ],
)  # fmt: skip
def test_load_refuses_unsafe_or_bad_configs(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(ConfigError) as info:
        load_arch(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_load_errors_for_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="architecture file not found"):
        load_arch(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("arch: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_arch(tmp_path / "broken.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_arch(tmp_path)
