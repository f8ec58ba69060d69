"""Architecture <-> Hugging Face transformers configs, read from :mod:`.table`.

:func:`hf_config` builds the config object of the class that expresses an architecture exactly (Llama,
Mistral, GPT-2, Starcoder2), so ``AutoModelForCausalLM.from_config`` builds archbench's model with the
same parameters. :func:`from_hf` reads a Llama, Mistral, Qwen2, GPT-2 or Starcoder2 config back into an
Architecture. An exported config carries the architecture under the key ``archbench`` (for the fields no
config key holds: ``drop_path``, the exact ``ffn_ratio``); the import uses it only when the rest of the
config still says the same shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archbench.errors import ArchitectureError
from archbench.interop import require
from archbench.interop.table import HF_TARGETS, NotExpressible, Target, choose
from archbench.search_space.architecture import Architecture

ARCH_KEY = "archbench"  # config.json key holding {"arch_id", "arch"}


def _transformers() -> Any:
    return require("transformers", "Hugging Face export and import")


def hf_target(arch: Architecture) -> Target:
    """The transformers config class that expresses ``arch`` exactly (:class:`NotExpressible` if none)."""
    return choose(arch, [t for t in HF_TARGETS.values() if t.exports], "transformers")


def hf_config(arch: Architecture) -> Any:
    """The transformers config object of ``arch`` (the class's own, so ``save_pretrained`` writes it)."""
    tf = _transformers()
    target = hf_target(arch)
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    config = tf.CONFIG_MAPPING[target.name](**target.write(arch))
    config.architectures = [MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[target.name]]
    setattr(config, ARCH_KEY, {"arch_id": arch.arch_id, "arch": arch.to_dict()})
    return config


@dataclass(frozen=True)
class Imported:
    """An imported architecture and what of the config it left out (numbers archbench keeps fixed)."""

    arch: Architecture
    left_out: tuple[str, ...]
    model_type: str

    def note(self) -> str:
        """One line naming what was left out ("" when nothing was)."""
        if not self.left_out:
            return ""
        return (
            f"{self.model_type} config imported without {', '.join(self.left_out)}: archbench has no field for "
            "these (they change numbers, not shape or cost)"
        )


def _as_dict(config: Any) -> dict[str, Any]:
    """A config object, a config.json mapping, or the path of one (file or model directory) as a dict
    normalised by its transformers class (legacy keys such as ``rope_theta`` moved where they live now)."""
    tf = _transformers()
    if isinstance(config, str | Path):
        path = Path(config)
        path = path / "config.json" if path.is_dir() else path
        try:
            config = json.loads(path.read_text())
        except FileNotFoundError:
            raise NotExpressible(f"config file not found: {path}") from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise NotExpressible(f"{path}: not a JSON config ({type(exc).__name__})") from None
    if isinstance(config, Mapping):
        model_type = config.get("model_type")
        if model_type not in HF_TARGETS:
            known = ", ".join(HF_TARGETS)
            raise NotExpressible(f"model_type {model_type!r} cannot be imported (supported: {known})")
        extra = {ARCH_KEY: config[ARCH_KEY]} if ARCH_KEY in config else {}
        try:
            config = tf.CONFIG_MAPPING[model_type].from_dict(dict(config))
        except (TypeError, ValueError, KeyError) as exc:
            raise NotExpressible(f"{model_type} config does not load: {str(exc).splitlines()[0]}") from None
        return {**config.to_dict(), **extra}
    if hasattr(config, "to_dict") and hasattr(config, "model_type"):
        return _as_dict(config.to_dict())
    raise NotExpressible(f"expected a transformers config, a config.json mapping or its path, got {type(config)}")


def _same_shape(target: Target, stored: Architecture, config: Mapping[str, Any]) -> bool:
    written = target.write(stored)
    return all(config.get(k) == v for k, v in written.items() if not k.endswith("_token_id"))


def from_hf(config: Any, strict: bool = False) -> Imported:
    """The Architecture of a transformers config (object, mapping or path).

    What the class fixes differently from archbench (another activation, mixed attention layers, a head
    size that is not hidden/heads) is refused in one line (:class:`NotExpressible`); numbers archbench
    keeps constant (RoPE base and scaling, norm eps, dropout) are left out and listed in
    :attr:`Imported.left_out`, or refused too with ``strict=True``.
    """
    c = _as_dict(config)
    target = HF_TARGETS[c["model_type"]]
    fields = target.fields()
    left_out = list(target.left_out)
    for key in target.keys:
        if key.back is not None:
            fields.update(key.back(c))
        if key.expect is None:
            continue
        allowed = key.expect(c)
        value = c.get(key.name)
        if value in allowed:
            continue
        if key.numeric:
            left_out.append(f"{key.name}={value!r}")
            continue
        want = " or ".join(repr(a) for a in allowed)
        raise NotExpressible(f"{target.label} with {key.name}={value!r}: archbench imports only {key.name}={want}")
    stored = c.get(ARCH_KEY)
    if isinstance(stored, Mapping) and isinstance(stored.get("arch"), Mapping):
        try:
            arch = Architecture.from_dict(stored["arch"])
        except ArchitectureError:
            arch = None
        if arch is not None and target.exports and not target.misses(arch) and _same_shape(target, arch, c):
            return _finish(arch, left_out, target, strict)
    try:
        arch = Architecture.from_dict(fields)
    except ArchitectureError as exc:
        raise NotExpressible(f"{target.label} does not make an archbench architecture: {exc}") from None
    return _finish(arch, left_out, target, strict)


def _finish(arch: Architecture, left_out: list[str], target: Target, strict: bool) -> Imported:
    imported = Imported(arch, tuple(left_out), target.name)
    if strict and left_out:
        raise NotExpressible(imported.note().replace("imported without", "has", 1) + "; strict import refuses it")
    return imported
