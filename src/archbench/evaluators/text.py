"""``text``: causal language modelling on your own corpus, with your own tokenizer.

    archbench search task=text task.data=corpus/ task.tokenizer=tokenizer.json
    archbench search task=text task.data='data/*.jsonl' task.text_column=content
    archbench search task=text task.data=fineweb10B/ task.tokenizer=gpt2.json     # nanoGPT shards

``data`` is any source :mod:`archbench.data` reads (a directory, a glob, files; text, JSONL, parquet, or
nanoGPT / llm.c shards and ``.npy`` tokens), or a directory ``archbench data prepare`` wrote. Text is
tokenized once into the data cache (the driver does it before the first trial, with a progress bar);
trials read the shards through memory maps. ``data: null`` is this Python's standard library source,
the corpus of ``charlm``, so the task runs with no setup.

Training windows are drawn uniformly from the training tokens. The validation set is fixed: the first
``val_tokens`` + 1 tokens of the validation split, cut into consecutive windows of the sequence length,
the last one padded and its padding not scored, so every architecture is scored on the same
``val_tokens`` targets whatever its sequence length.

Metrics: ``val_loss`` in nats per token, and ``val_bpb`` in bits per UTF-8 byte of the text behind the
scored tokens, so rows under different tokenizers compare; rows record the validation set's
``val_bytes_per_token`` and the ``data_digest`` (corpus content, tokenizer, split and ``val_tokens``).
An architecture whose vocabulary is smaller than the tokenizer's is refused before training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from archbench.errors import ConfigError
from archbench.evaluators.task import IGNORE, TASKS, Batch, HeldOutData, Task, digest_of, seq_len_for

if TYPE_CHECKING:
    from archbench.data import Dataset, DataSpec
    from archbench.search_space.architecture import Architecture


class TextData(HeldOutData):
    def __init__(self, ds: Dataset, seq_len: int, val_tokens: int) -> None:
        self.seq_len = seq_len
        self.train = ds.train_stream
        self.n_starts = self.train.starts(seq_len + 1)
        if self.n_starts < 1:
            raise ConfigError(
                f"task text: no training file holds {seq_len + 1} tokens (one window of seq_len={seq_len})"
            )
        val = ds.val_stream.head(val_tokens + 1)
        n = len(val) - 1  # scored targets: validation tokens 1..n
        rows = math.ceil(n / seq_len)
        x = np.zeros(rows * seq_len, dtype=np.int64)
        y = np.full(rows * seq_len, IGNORE, dtype=np.int64)
        x[:n], y[:n] = val[:-1], val[1:]  # the last window's padding comes after its real tokens: causal
        self.val_x = torch.from_numpy(x).view(rows, seq_len)
        self.val_y = torch.from_numpy(y).view(rows, seq_len)

    def train_batch(self, generator: torch.Generator, batch_size: int) -> Batch:
        starts = torch.randint(0, self.n_starts, (batch_size,), generator=generator).numpy()
        window = torch.from_numpy(self.train.windows(starts, self.seq_len + 1))
        return Batch(window[:, :-1], window[:, 1:])


@TASKS.register("text")
@dataclass(frozen=True)
class Text(Task):
    """Causal LM on ``data`` tokenized by ``tokenizer``; see the module docstring."""

    name: ClassVar[str] = "text"
    metric_names: ClassVar[tuple[str, ...]] = ("val_loss", "val_bpb")

    batch_size: int = 16
    seq_len: int | None = None  # None: the architecture's max_seq_len
    data: str | tuple[str, ...] | None = None  # sources, or a prepared directory; None: the stdlib source
    tokenizer: str | None = None  # "bytes" or a tokenizer.json; None: bytes (a prepared directory: its own)
    val: str | tuple[str, ...] | None = None  # an explicit validation source (replaces the split rule)
    text_column: str = "text"  # JSONL / parquet: the field that holds the text
    val_fraction: float = 0.1  # share of documents (by a hash of their bytes) held out for validation
    val_tokens: int = 1 << 16  # size of the fixed validation set, in scored tokens
    workers: int | None = None  # preparation processes; None: one per core

    def __post_init__(self) -> None:
        # Paths are made absolute where the task is built: a Ray worker may run in another directory.
        for name in ("data", "val"):
            value = getattr(self, name)
            if isinstance(value, list | tuple):
                object.__setattr__(self, name, tuple(_absolute(v) for v in value))
            elif value is not None:
                object.__setattr__(self, name, _absolute(value))
        if self.tokenizer is not None and str(self.tokenizer) != "bytes":
            object.__setattr__(self, "tokenizer", _absolute(self.tokenizer))
        for name in ("val_tokens", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"task text: {name}={value!r} must be a whole number >= 1")
        from archbench.data.plan import check_split

        check_split(self.val_fraction, self.text_column, where="task text: ")  # as the DataSpec will check them

    def sources(self) -> tuple[str, ...]:
        """The data sources (``data: null``: the standard library's ``.py`` files, as charlm reads them)."""
        if self.data is None:
            from archbench.evaluators.corpus import list_files, stdlib_root

            return tuple(str(p) for p in list_files(stdlib_root()))
        return self.data if isinstance(self.data, tuple) else (self.data,)

    def spec(self) -> DataSpec:
        """What :mod:`archbench.data` is asked for: the sources and the settings that name the dataset."""
        from archbench.data import DataSpec

        return DataSpec(self.sources(), self.tokenizer, self.val, self.text_column, self.val_fraction)

    def dataset(self, progress: bool = False) -> Dataset:
        """The prepared data, tokenized into the cache on first use. Not memoised: a corpus edited between
        two searches run by one (Ray worker) process is noticed; unchanged files are not read again."""
        from archbench.data import open_data

        return open_data(self.spec(), workers=self.workers, progress=progress)

    def ready(self, progress: bool = True) -> None:
        self.dataset(progress=progress)

    def vocab_size(self) -> int:
        """The tokenizer's vocabulary (a prepared directory's own when no tokenizer is given); cheap."""
        from archbench.data import load_tokenizer, read_meta

        root = self.spec().prepared if self.tokenizer is None else None
        if root is not None:
            return int(read_meta(root)["tokenizer"]["vocab_size"])
        return load_tokenizer(self.tokenizer).info.vocab_size

    def digest(self) -> str:
        from archbench.data import identify

        return digest_of({"task": self.name, "data": identify(self.spec())[0], "val_tokens": self.val_tokens})

    def data_columns(self) -> dict[str, Any]:
        ds = self.dataset()
        n = min(self.val_tokens, len(ds.val_stream) - 1)
        return {"data_digest": self.digest(), "val_bytes_per_token": float(_val_bytes(ds, n) / n)}

    def prepare(self, arch: Architecture) -> TextData:
        self.check(arch)  # before anything is read: the refusal names both vocabularies
        return TextData(self.dataset(), seq_len_for(arch, self.seq_len, self.name), self.val_tokens)

    def check(self, arch: Architecture) -> None:
        need = self.vocab_size()
        if arch.vocab_size < need:
            tok = self.tokenizer or "bytes"
            raise ConfigError(
                f"task text: tokenizer {tok} has {need} tokens but the architecture's vocab_size is "
                f"{arch.vocab_size}; give vocab_size >= {need} (vocab_size: task in a space)"
            )

    def summarize(self, loss_sum: float, correct: int, count: int) -> dict[str, float]:
        """``val_loss`` per token; ``val_bpb`` over the UTF-8 bytes behind the ``count`` scored targets
        (validation tokens 1..count)."""
        return {"val_loss": loss_sum / count, "val_bpb": loss_sum / math.log(2) / _val_bytes(self.dataset(), count)}


def _absolute(path: str) -> str:
    return str(Path(str(path)).expanduser().absolute())


def _val_bytes(ds: Dataset, count: int) -> float:
    """UTF-8 bytes behind validation tokens 1..count (the targets of the first ``count`` positions)."""
    nbytes = float(ds.val_bytes(1, count + 1))
    if nbytes <= 0:
        raise ConfigError(f"task text: the first {count} validation tokens stand for no text (bits per byte undefined)")
    return nbytes
