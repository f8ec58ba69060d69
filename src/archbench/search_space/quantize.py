"""Turn a trained float model into its deployed precision (the Architecture's ``quant``).

* ``fp32``: unchanged; ``bf16`` / ``fp16``: the whole model cast to that dtype.
* ``int8``: torchao dynamic int8 activations + int8 weights on every Linear inside the blocks.
* ``int8_weight_only``: torchao int8 weights, float activations.
* ``fp8``: torchao dynamic float8 activations + float8 weights; needs a CUDA GPU of compute
  capability 8.9 or newer (Ada, Hopper, Blackwell).

Embeddings and the LM head stay in float for the integer and fp8 modes (the head's weight is tied to
the embedding by default, and quantizing it is the usual first source of quality loss). What the
device cannot run is returned as status ``unsupported`` with a reason, never raised.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from archbench.search_space.architecture import QUANTS

FLOAT_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Quantized:
    """Outcome of :func:`quantize`: the deployed model, or ``None`` with the reason it is unsupported."""

    quant: str
    status: str  # "ok" | "unsupported"
    model: nn.Module | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def unsupported_reason(quant: str, device: torch.device | str) -> str | None:
    """Why ``quant`` cannot run on ``device`` (None when it can). Cheap: builds no model."""
    device = torch.device(device)
    if quant not in QUANTS:
        return f"unknown quant {quant!r}; known: {', '.join(QUANTS)}"
    if quant == "fp8":
        if device.type != "cuda" or not torch.cuda.is_available():
            return f"fp8 needs a CUDA GPU with compute capability >= 8.9; this device is {device.type}"
        cap = torch.cuda.get_device_capability(device)
        if cap < (8, 9):
            name = torch.cuda.get_device_name(device)
            return f"fp8 needs compute capability >= 8.9; {name} has {cap[0]}.{cap[1]}"
    if quant in ("int8", "int8_weight_only", "fp8") and importlib.util.find_spec("torchao") is None:
        return f"{quant} needs torchao (pip install torchao)"  # pragma: no cover - it is a dependency
    return None


def supported_quants(device: torch.device | str) -> dict[str, str | None]:
    """``{quant: None | reason}`` for every quant mode on ``device``."""
    return {q: unsupported_reason(q, device) for q in QUANTS}


def _block_linears(module: nn.Module, fqn: str) -> bool:
    return isinstance(module, nn.Linear) and ".blocks." in f".{fqn}"


def _import_torchao_quantization() -> Any:
    """torchao.quantization, imported without its start-up noise (missing CUDA kernels on a CPU
    machine are logged as warnings, and a torch deprecation notice about its enums)."""
    loggers = [logging.getLogger(n) for n in ("torchao", "torch.utils._pytree")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module("torchao.quantization")
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _torchao_config(quant: str) -> object:
    tq = _import_torchao_quantization()
    if quant == "int8":
        return tq.Int8DynamicActivationInt8WeightConfig()
    if quant == "int8_weight_only":
        return tq.Int8WeightOnlyConfig()
    return tq.Float8DynamicActivationFloat8WeightConfig()


def quantize(
    model: nn.Module, quant: str, device: torch.device | str | None = None, copy_model: bool = True
) -> Quantized:
    """The deployed form of a trained float ``model`` in precision ``quant``.

    ``device`` defaults to where the model's parameters are. The float model is left untouched
    unless ``copy_model=False``.
    """
    if device is None:
        device = next(model.parameters()).device
    reason = unsupported_reason(quant, device)
    if reason is not None:
        return Quantized(quant, "unsupported", None, reason)
    target = copy.deepcopy(model) if copy_model else model
    target.eval()
    if quant in FLOAT_DTYPES:
        return Quantized(quant, "ok", target.to(FLOAT_DTYPES[quant]))
    try:
        config = _torchao_config(quant)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _import_torchao_quantization().quantize_(target, config, filter_fn=_block_linears)
    except (RuntimeError, NotImplementedError, TypeError, ValueError) as exc:
        return Quantized(quant, "unsupported", None, f"torchao {quant} failed: {type(exc).__name__}: {exc}")
    return Quantized(quant, "ok", target)
