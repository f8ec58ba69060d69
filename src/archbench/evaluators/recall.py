"""``recall``: synthetic multi-query associative recall (MQAR, Arora et al. 2023, "Zoology").

Each sequence starts with ``P`` key-value pairs, then random filler, then the ``P`` keys again in a
random order, each followed by its value::

    k3 v3 k1 v1 ... | filler ... | k1 v1 k3 v3 ...

Only the values of the queries are scored (predicted at the query key's position). The answer lies at
least ``seq_len - 4P`` tokens back, beyond a short sliding window, so local and block-sparse attention
pay their real cost here. Keys, values and filler use disjoint token ranges. Metric: ``val_acc``
(and ``val_loss`` over the scored positions); chance is ``1 / num_values``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch

from archbench.errors import ConfigError
from archbench.evaluators.task import IGNORE, TASKS, Batch, HeldOutData, Task, seq_len_for

if TYPE_CHECKING:
    from archbench.search_space.architecture import Architecture

VAL_SEED = 0x5EED_7A11  # the fixed validation set's own stream, apart from any training seed


class RecallData(HeldOutData):
    def __init__(self, task: Recall, seq_len: int, pairs: int) -> None:
        self.task = task
        self.seq_len = seq_len
        self.pairs = pairs
        gen = torch.Generator().manual_seed(VAL_SEED)
        val = self.make(gen, task.val_size)
        self.val_x, self.val_y = val.x, val.y

    def make(self, gen: torch.Generator, n: int) -> Batch:
        """``n`` fresh sequences drawn with ``gen``."""
        t, s, p = self.task, self.seq_len, self.pairs
        keys = torch.rand(n, t.num_keys, generator=gen).argsort(dim=1)[:, :p]  # distinct keys per sequence
        values = torch.randint(0, t.num_values, (n, p), generator=gen) + t.num_keys
        filler = torch.randint(0, t.num_filler, (n, s - 4 * p), generator=gen) + t.num_keys + t.num_values
        order = torch.rand(n, p, generator=gen).argsort(dim=1)
        q_keys, q_values = keys.gather(1, order), values.gather(1, order)
        context = torch.stack((keys, values), dim=2).view(n, 2 * p)
        queries = torch.stack((q_keys, q_values), dim=2).view(n, 2 * p)
        x = torch.cat((context, filler, queries), dim=1)
        y = torch.full_like(x, IGNORE)
        key_pos = torch.arange(s - 2 * p, s, 2)
        y[:, key_pos] = q_values  # at a query key, predict its value
        return Batch(x, y)

    def train_batch(self, generator: torch.Generator, batch_size: int) -> Batch:
        return self.make(generator, batch_size)


@TASKS.register("recall")
@dataclass(frozen=True)
class Recall(Task):
    """Multi-query associative recall over ``num_pairs`` key-value pairs per sequence."""

    name: ClassVar[str] = "recall"
    metric_names: ClassVar[tuple[str, ...]] = ("val_loss", "val_acc")

    batch_size: int = 32
    seq_len: int | None = None  # None: the architecture's max_seq_len
    num_pairs: int = 8  # capped at seq_len // 4 so that context and queries fit
    num_keys: int = 64
    num_values: int = 64
    num_filler: int = 64
    val_size: int = 1024  # validation sequences

    def prepare(self, arch: Architecture) -> RecallData:
        seq_len = seq_len_for(arch, self.seq_len, self.name)
        pairs = min(self.num_pairs, seq_len // 4, self.num_keys)
        if pairs < 1:
            raise ConfigError(f"task recall needs seq_len >= 4 for one key-value pair; got {seq_len}")
        vocab = self.num_keys + self.num_values + self.num_filler
        if vocab > arch.vocab_size:
            raise ConfigError(
                f"task recall needs vocab_size >= num_keys + num_values + num_filler = {vocab}; "
                f"the architecture has {arch.vocab_size}"
            )
        return RecallData(self, seq_len, pairs)
