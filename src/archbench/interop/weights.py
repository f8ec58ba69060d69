"""archbench's own trained weights as safetensors, with the architecture in the file's metadata.

A weights file is self-describing: :func:`load_weights` rebuilds the model from the metadata alone. Tied
weights are stored once (the LM head is the embedding; safetensors refuses aliased tensors) and tied
again on load. Writes are atomic: a crash leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from archbench.errors import ConfigError
from archbench.search_space.architecture import Architecture

ARCH = "archbench.arch"  # metadata keys (safetensors metadata is str -> str)
ARCH_ID = "archbench.arch_id"
NUM_CLASSES = "archbench.num_classes"
TIED = "lm_head.weight"  # the name left out of the file when the head is tied to trunk.wte.weight
EMBEDDING = "trunk.wte.weight"


@dataclass(frozen=True)
class Weights:
    """A loaded weights file: the architecture, the model kind and the tensors under archbench's names."""

    arch: Architecture
    num_classes: int | None  # None: the causal decoder LM; K: the encoder classifier
    tensors: dict[str, Tensor]  # complete (a tied head is present again, as the embedding)
    metadata: dict[str, str]


def weights_name(arch: Architecture, suffix: str = "") -> str:
    """The file name archbench gives the weights of ``arch`` (``suffix`` tells runs of one arch apart)."""
    return f"{arch.arch_id}{suffix}.safetensors"


def save_weights(
    model: nn.Module,
    arch: Architecture,
    path: str | Path,
    num_classes: int | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model``'s float weights to ``path`` with ``arch`` (and ``metadata``, as strings) in the header."""
    path = Path(path)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    if TIED in state and EMBEDDING in state and arch.tie_embeddings and num_classes is None:
        del state[TIED]
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta.update({ARCH: json.dumps(arch.to_dict()), ARCH_ID: arch.arch_id, NUM_CLASSES: str(num_classes or "")})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(state, str(tmp), metadata=meta)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_weights(path: str | Path) -> Weights:
    """Read a file written by :func:`save_weights`; one line when it is missing or not archbench's."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no iterator
    except Exception as exc:  # safetensors raises its own error types for a torn or foreign file
        raise ConfigError(f"{path}: not a safetensors file ({type(exc).__name__})") from None
    if ARCH not in meta:
        raise ConfigError(f"{path}: no archbench architecture in its metadata (not written by archbench)")
    arch = Architecture.from_dict(json.loads(meta[ARCH]))
    num_classes = int(meta[NUM_CLASSES]) if meta.get(NUM_CLASSES) else None
    if num_classes is None and arch.tie_embeddings and TIED not in tensors and EMBEDDING in tensors:
        tensors[TIED] = tensors[EMBEDDING]
    return Weights(arch, num_classes, tensors, meta)


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[Architecture, nn.Module]:
    """The model of a weights file with its weights loaded (strictly: every tensor, no other)."""
    from archbench.search_space.model import build

    w = load_weights(path)
    model = build(w.arch, num_classes=w.num_classes)
    model.load_state_dict(w.tensors, strict=True)
    return w.arch, model.to(device)


def save_trained(
    model: nn.Module,
    arch: Architecture,
    where: str | Path,
    *,
    task: str,
    budget: str,
    seed: int,
    num_classes: int | None = None,
) -> Path:
    """Keep a trial's trained weights: ``where`` is the file (``*.safetensors``) or a directory, in which
    the file is named after the arch, task, budget and seed (so runs of one arch do not overwrite each
    other). Returns the absolute path written (what the leaderboard row records)."""
    where = Path(where)
    if where.suffix != ".safetensors":
        run = f"-{task}-{''.join(c for c in budget if c.isalnum())}-seed{seed}"
        where = where / weights_name(arch, run)
    meta = {"task": task, "budget": budget, "seed": seed}
    return save_weights(model, arch, where, num_classes=num_classes, metadata=meta).resolve()
