"""Defaults written in two places (the Hydra config the CLI composes, and the typed config the Python
API uses) must not drift apart; where one place can import the other, it does (see the modules)."""

from __future__ import annotations

from dataclasses import fields
from importlib import resources
from typing import Any

import yaml


def _root_config() -> dict[str, Any]:
    return yaml.safe_load(resources.files("archbench.conf").joinpath("config.yaml").read_text())


def test_the_funnel_settings_of_config_yaml_are_fidelity_configs_defaults() -> None:
    from archbench.cli.search import _fidelity_settings
    from archbench.search.fidelity import FidelityConfig

    given = _fidelity_settings(_root_config()["search"])
    assert set(given) == {f.name for f in fields(FidelityConfig)}  # config.yaml states every one
    assert FidelityConfig(**given) == FidelityConfig()


def test_the_training_settings_of_config_yaml_are_train_configs_defaults() -> None:
    from archbench.train_config import TrainConfig

    train = _root_config()["train"]
    assert train == {k: getattr(TrainConfig(), k) for k in train}
