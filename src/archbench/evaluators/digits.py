"""``digits``: the 8x8 handwritten digits bundled with scikit-learn, classified by the encoder.

Each of the 64 pixels is one token (its intensity 0..16 is the token id), read in raster order by the
bidirectional encoder with a mean-pooled head. The split is stratified and fixed (scikit-learn's
``train_test_split`` with ``random_state=0``): 1437 training and 360 validation images. Metric:
``val_acc`` (and ``val_loss``); chance is 0.1.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from archbench.errors import ConfigError
from archbench.evaluators.task import TASKS, Batch, HeldOutData, Task

if TYPE_CHECKING:
    from archbench.search_space.architecture import Architecture

PIXELS = 64
LEVELS = 17  # intensities 0..16


@lru_cache(maxsize=2)
def load_split(val_fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_x, train_y, val_x, val_y) as int64 arrays, the same on every call and machine."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = data.data.astype(np.int64)
    y = data.target.astype(np.int64)
    tx, vx, ty, vy = train_test_split(x, y, test_size=val_fraction, random_state=0, stratify=y)
    return tx, ty, vx, vy


class DigitsData(HeldOutData):
    seq_len = PIXELS

    def __init__(self, val_fraction: float) -> None:
        tx, ty, vx, vy = load_split(val_fraction)
        self.train_x, self.train_y = torch.from_numpy(tx), torch.from_numpy(ty)
        self.val_x, self.val_y = torch.from_numpy(vx), torch.from_numpy(vy)

    def train_batch(self, generator: torch.Generator, batch_size: int) -> Batch:
        idx = torch.randint(0, len(self.train_x), (batch_size,), generator=generator)
        return Batch(self.train_x[idx], self.train_y[idx])


@TASKS.register("digits")
@dataclass(frozen=True)
class Digits(Task):
    """8x8 digit images, pixels as tokens, through the bidirectional encoder."""

    name: ClassVar[str] = "digits"
    metric_names: ClassVar[tuple[str, ...]] = ("val_loss", "val_acc")
    num_classes: ClassVar[int | None] = 10

    batch_size: int = 64
    val_fraction: float = 0.2

    def prepare(self, arch: Architecture) -> DigitsData:
        if arch.max_seq_len < PIXELS or arch.vocab_size < LEVELS:
            raise ConfigError(
                f"task digits needs max_seq_len >= {PIXELS} and vocab_size >= {LEVELS} (one token per pixel, "
                f"intensities 0..16); the architecture has {arch.max_seq_len} and {arch.vocab_size}"
            )
        return DigitsData(self.val_fraction)
