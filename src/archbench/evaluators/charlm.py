"""``charlm``: byte-level language modelling of the Python standard library's source (the default task).

Training windows are drawn uniformly from the training files' bytes; the validation set is the first
``val_bytes`` bytes of the held-out files, cut into consecutive windows, the same for every run.
Metrics: ``val_loss`` (nats per byte) and ``val_bpb`` (bits per byte).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from archbench.errors import ConfigError
from archbench.evaluators.corpus import Corpus, load_corpus
from archbench.evaluators.task import TASKS, Batch, HeldOutData, Task, bits_per_byte, seq_len_for

if TYPE_CHECKING:
    from archbench.search_space.architecture import Architecture


class CharLMData(HeldOutData):
    def __init__(self, corpus: Corpus, seq_len: int, val_bytes: int) -> None:
        self.corpus = corpus
        self.seq_len = seq_len
        self.train = torch.from_numpy(corpus.train).long()
        n_windows = min(val_bytes, len(corpus.val) - 1) // seq_len
        if n_windows < 1:
            raise ConfigError(f"charlm: the validation files hold {len(corpus.val)} bytes, fewer than one window")
        # Window i predicts bytes [i*S + 1, (i+1)*S + 1): consecutive windows cover the first val_bytes bytes.
        val = torch.from_numpy(corpus.val[: n_windows * seq_len + 1].astype(np.int64))
        self.val_x = val[:-1].view(n_windows, seq_len)
        self.val_y = val[1:].view(n_windows, seq_len)

    def train_batch(self, generator: torch.Generator, batch_size: int) -> Batch:
        starts = torch.randint(0, len(self.train) - self.seq_len - 1, (batch_size,), generator=generator)
        idx = starts[:, None] + torch.arange(self.seq_len + 1)
        window = self.train[idx]
        return Batch(window[:, :-1], window[:, 1:])


@TASKS.register("charlm")
@dataclass(frozen=True)
class CharLM(Task):
    """Byte-level LM on the standard library's ``.py`` files; ``root`` swaps in another source tree."""

    name: ClassVar[str] = "charlm"
    metric_names: ClassVar[tuple[str, ...]] = ("val_loss", "val_bpb")

    batch_size: int = 16  # small batches, more steps: at a fixed byte budget, tiny models learn more per byte
    seq_len: int | None = None  # None: the architecture's max_seq_len
    val_bytes: int = 1 << 16  # size of the fixed validation set
    val_fraction: float = 0.1  # share of files held out for validation
    root: str | None = None  # None: sysconfig's stdlib directory

    def prepare(self, arch: Architecture) -> CharLMData:
        if arch.vocab_size < 256:
            raise ConfigError(f"task charlm needs vocab_size >= 256 (bytes); the architecture has {arch.vocab_size}")
        return CharLMData(
            load_corpus(self.root, self.val_fraction), seq_len_for(arch, self.seq_len, self.name), self.val_bytes
        )

    def summarize(self, loss_sum: float, correct: int, count: int) -> dict[str, float]:
        loss = loss_sum / count
        return {"val_loss": loss, "val_bpb": bits_per_byte(loss)}
