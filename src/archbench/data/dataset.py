"""Token data ready to train on: :func:`open_data` gives a :class:`Dataset` for any source.

* a directory prepared by archbench (``meta.json``: ``archbench data prepare --out DIR`` or the cache)
  is opened as it is;
* token files (nanoGPT / llm.c shards, ``.npy``) are read in place, split by the file rule;
* text (files, JSONL, parquet) is prepared into the cache first, once (:mod:`archbench.data.preparation`).

A :class:`Dataset` knows its train and validation token files, its tokenizer, its digest, and how many
UTF-8 bytes of text lie behind any stretch of validation tokens (:meth:`Dataset.val_bytes`): exact over
whole documents from ``val_docs.npy`` and proportional within a document the stretch cuts; for token
files, which keep no text, by decoding the stretch with the tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from archbench.data import shards
from archbench.data.cache import data_cache
from archbench.data.plan import DataSpec, make_plan, read_meta, split_token_files
from archbench.data.preparation import build
from archbench.data.stream import TokenStream
from archbench.data.tokenizer import TokenizerInfo, load_tokenizer
from archbench.errors import ConfigError


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and validation token files, their tokenizer and digest (see the module docstring)."""

    train: tuple[shards.ShardInfo, ...]
    val: tuple[shards.ShardInfo, ...]
    tokenizer: TokenizerInfo
    digest: str
    root: Path | None = None  # the prepared directory (None: token files read in place)
    decoder: str | None = None  # what decodes tokens to text: a tokenizer.json path (None: bytes)
    val_docs: np.ndarray | None = field(default=None, repr=False)  # (n, 2): tokens, bytes per val document

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    @cached_property
    def train_stream(self) -> TokenStream:
        return TokenStream(self.train)

    @cached_property
    def val_stream(self) -> TokenStream:
        return TokenStream(self.val)

    def val_bytes(self, start: int, stop: int) -> float:
        """UTF-8 bytes of text behind validation tokens ``[start, stop)``."""
        if self.val_docs is None:
            tokens = self.val_stream.head(stop)[start:]
            return float(len(load_tokenizer(self.decoder).decode(tokens)))
        return self._bytes_before(stop) - self._bytes_before(start)

    def _bytes_before(self, t: int) -> float:
        docs = self.val_docs
        assert docs is not None
        ends = np.cumsum(docs[:, 0])
        i = int(np.searchsorted(ends, t, side="right"))  # the document holding token t
        whole = float(docs[:i, 1].sum())
        if i >= len(docs) or docs[i, 0] == 0:
            return whole
        into = t - (int(ends[i - 1]) if i else 0)
        return whole + docs[i, 1] * into / docs[i, 0]


def open_prepared(root: Path) -> Dataset:
    """A directory written by :func:`archbench.data.preparation.prepare`."""
    meta = read_meta(root)
    split = {s: tuple(shards.inspect(root / sh["file"]) for sh in meta["shards"][s]) for s in ("train", "val")}
    tok = TokenizerInfo(**{k: v for k, v in meta["tokenizer"].items() if k != "file"})
    decoder = str(root / meta["tokenizer"]["file"]) if meta["tokenizer"].get("file") else None
    docs_path = root / "val_docs.npy"
    docs = np.load(docs_path) if docs_path.exists() else None
    return Dataset(split["train"], split["val"], tok, meta["digest"], root, decoder, docs)


def open_data(spec: DataSpec, *, workers: int | None = None, progress: bool = False) -> Dataset:
    """The dataset ``spec`` names (see the module docstring); text is prepared into the cache if needed."""
    root = spec.prepared
    if root is not None:
        return _prepared_with(root, spec)
    plan = make_plan(spec)
    if plan.tokenized:
        train, val_files = split_token_files(plan)
        info = plan.tokenizer.info
        decoder = None if info.kind == "bytes" else info.source
        open_all = lambda fs: tuple(shards.inspect(f.path) for f in fs)  # noqa: E731
        data_set = Dataset(open_all(train), open_all(val_files), info, plan.digest, None, decoder)
        if not sum(i.count for i in data_set.train):
            raise ConfigError(f"the training token files ({', '.join(f.name for f in train)}) hold no tokens")
        return data_set
    return open_prepared(build(plan, data_cache() / plan.digest, workers, progress))


def identify(spec: DataSpec) -> tuple[str, TokenizerInfo]:
    """The digest and tokenizer of what :func:`open_data` gives for ``spec``, without preparing anything
    (the sources are hashed once; unchanged ones are not read again)."""
    root = spec.prepared
    if root is not None:
        meta = read_meta(root)
        info = TokenizerInfo(**{k: v for k, v in meta["tokenizer"].items() if k != "file"})
        if spec.tokenizer is not None and load_tokenizer(spec.tokenizer).info.digest != info.digest:
            _prepared_with(root, spec)  # raises the one-line mismatch
        return meta["digest"], info
    plan = make_plan(spec)
    return plan.digest, plan.tokenizer.info


def _prepared_with(root: Path, spec: DataSpec) -> Dataset:
    if spec.val:
        raise ConfigError(f"{root} is prepared data with its own validation split: give no val= source")
    data_set = open_prepared(root)
    if spec.tokenizer is not None:
        given = load_tokenizer(spec.tokenizer).info
        if given.digest != data_set.tokenizer.digest:
            raise ConfigError(
                f"{root} was prepared with tokenizer {data_set.tokenizer.source} (digest "
                f"{data_set.tokenizer.digest}), not {given.source} (digest {given.digest})"
            )
    return data_set
