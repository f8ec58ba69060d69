"""The preparation's work units and the worker that tokenizes them (see :mod:`archbench.data.preparation`).

A unit is about :data:`UNIT_BYTES` of input: a group of small text files, a byte range of a JSONL file
(a line belongs to the range it starts in), a row group of a parquet file, or one token file. A worker
reads its documents, sends each to train or validation (:func:`archbench.data.plan.is_validation_doc`,
or the unit's fixed split), encodes them in batches of :data:`BATCH_BYTES` and writes the tokens, in the
shard dtype and without a header, to ``parts/<index>.<split>``. Pool processes are started fresh
(``spawn``), run their tokenizer single-threaded, and die with their parent.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archbench.data import shards, sources
from archbench.data.plan import Plan, is_validation_doc, split_token_files
from archbench.data.sources import JSONL, PARQUET, TEXT, TOKENS, SourceFile
from archbench.data.tokenizer import load_tokenizer

UNIT_BYTES = 1 << 20  # work per unit: enough units to keep every core busy to the end, each worth a round trip
BATCH_BYTES = 1 << 20  # text encoded per tokenizer call
TRAIN, VAL, AUTO = "train", "val", "auto"


@dataclass(frozen=True)
class Unit:
    """One worker task: some documents and where they go (AUTO: the split rule decides per document)."""

    index: int
    kind: str
    files: tuple[SourceFile, ...]
    split: str
    start: int = 0  # JSONL: byte range [start, stop); PARQUET: the row group in start
    stop: int = 0
    size: int = 0  # bytes of input, for the progress bar


@dataclass(frozen=True)
class UnitResult:
    index: int
    tokens: dict[str, int]  # split -> tokens written to the unit's part file
    docs: dict[str, int]
    bytes: dict[str, int]
    val_docs: np.ndarray  # (n, 2) int64: tokens and UTF-8 bytes of each validation document
    skipped: int  # null documents
    size: int


def plan_units(plan: Plan) -> list[Unit]:
    """The work units of ``plan``, in the order their tokens are joined."""
    if plan.tokenized:
        train, val = split_token_files(plan)
        tagged = [(f, VAL if f in val else TRAIN) for f in plan.files + plan.val_files if f in train or f in val]
        return [Unit(i, TOKENS, (f,), split, size=f.size) for i, (f, split) in enumerate(tagged)]
    units: list[Unit] = []
    for group, split in ((plan.files, AUTO if not plan.val_files else TRAIN), (plan.val_files, VAL)):
        batch: list[SourceFile] = []
        for f in group:
            if f.kind == TEXT:
                batch.append(f)
                if sum(b.size for b in batch) >= UNIT_BYTES:
                    units.append(Unit(len(units), TEXT, tuple(batch), split, size=sum(b.size for b in batch)))
                    batch = []
                continue
            if batch:
                units.append(Unit(len(units), TEXT, tuple(batch), split, size=sum(b.size for b in batch)))
                batch = []
            if f.kind == JSONL:
                for a, b in sources.jsonl_ranges(f, UNIT_BYTES):
                    units.append(Unit(len(units), JSONL, (f,), split, a, b, size=b - a))
            else:
                groups = sources.parquet_row_groups(f, plan.text_column)
                units.extend(Unit(len(units) + g, PARQUET, (f,), split, g, size=f.size // max(1, groups))
                             for g in range(groups))  # fmt: skip
        if batch:
            units.append(Unit(len(units), TEXT, tuple(batch), split, size=sum(b.size for b in batch)))
    return units


class Worker:
    """Tokenizes units into part files ``parts/<index>.<split>`` (raw tokens, no header)."""

    def __init__(self, tokenizer: str | None, parts: str, dtype: str, val_fraction: float, column: str) -> None:
        self.tok = load_tokenizer(tokenizer)
        self.parts, self.dtype = Path(parts), np.dtype(dtype)
        self.val_fraction, self.column = val_fraction, column

    def documents(self, unit: Unit) -> Iterator[bytes | None]:
        for f in unit.files:
            if unit.kind == TEXT:
                yield from sources.text_documents(f)
            elif unit.kind == JSONL:
                yield from sources.jsonl_documents(f, self.column, unit.start, unit.stop)
            else:
                yield from sources.parquet_documents(f, self.column, unit.start)

    def __call__(self, unit: Unit) -> UnitResult:
        if unit.kind == TOKENS:
            return self.copy(unit)
        out = {s: open(self.parts / f"{unit.index:06d}.{s}", "wb") for s in (TRAIN, VAL)}  # noqa: SIM115
        acc = Accumulator(self.tok, out, self.dtype)
        skipped = 0
        try:
            for doc in self.documents(unit):
                if doc is None:
                    skipped += 1
                elif doc:
                    split = unit.split
                    if split == AUTO:
                        split = VAL if is_validation_doc(doc, self.val_fraction) else TRAIN
                    acc.add(split, doc)
            acc.flush(TRAIN)
            acc.flush(VAL)
        finally:
            for f in out.values():
                f.close()
        vd = np.concatenate(acc.val_docs) if acc.val_docs else np.zeros((0, 2), np.int64)
        return UnitResult(unit.index, acc.tokens, acc.docs, acc.bytes, vd, skipped, unit.size)

    def copy(self, unit: Unit) -> UnitResult:
        """A token file's tokens into the unit's part file, in the shard dtype."""
        arr = shards.open_tokens(shards.inspect(unit.files[0].path))
        with open(self.parts / f"{unit.index:06d}.{unit.split}", "wb") as out:
            for i in range(0, len(arr), 1 << 24):
                out.write(np.asarray(arr[i : i + (1 << 24)], dtype=self.dtype).tobytes())
        zero = dict.fromkeys((TRAIN, VAL), 0)
        tokens = {**zero, unit.split: len(arr)}
        return UnitResult(unit.index, tokens, zero, zero, np.zeros((0, 2), np.int64), 0, unit.size)


class Accumulator:
    """Documents waiting to be encoded, per split, and what was written."""

    def __init__(self, tok: Any, out: dict[str, Any], dtype: np.dtype) -> None:
        self.tok, self.out, self.dtype = tok, out, dtype
        self.pending: dict[str, list[bytes]] = {TRAIN: [], VAL: []}
        self.pending_bytes = dict.fromkeys((TRAIN, VAL), 0)
        self.tokens, self.docs, self.bytes = (dict.fromkeys((TRAIN, VAL), 0) for _ in range(3))
        self.val_docs: list[np.ndarray] = []

    def add(self, split: str, doc: bytes) -> None:
        self.pending[split].append(doc)
        self.pending_bytes[split] += len(doc)
        if self.pending_bytes[split] >= BATCH_BYTES:
            self.flush(split)

    def flush(self, split: str) -> None:
        batch = self.pending[split]
        if not batch:
            return
        ids, counts = self.tok.encode_batch(batch)
        self.out[split].write(np.asarray(ids, dtype=self.dtype).tobytes())
        self.tokens[split] += len(ids)
        self.docs[split] += len(batch)
        self.bytes[split] += self.pending_bytes[split]
        if split == VAL:
            self.val_docs.append(np.array([counts, [len(d) for d in batch]], dtype=np.int64).T.reshape(-1, 2))
        self.pending[split], self.pending_bytes[split] = [], 0


_WORKER: Worker | None = None


def init(parent: int, *args: Any) -> None:
    """A pool process's initializer: it dies with its parent ``parent`` (a killed preparation leaves no
    worker writing into its staging directory), and its tokenizer runs single-threaded (one process per
    core already)."""
    global _WORKER
    _die_with(parent)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _WORKER = Worker(*args)


def _die_with(parent: int) -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):  # elsewhere an orphan finishes its unit, then fails to report, and exits
        pass
    if os.getppid() != parent:  # the parent died while this process was starting: take no queued unit
        os._exit(1)


def work(unit: Unit) -> UnitResult:
    assert _WORKER is not None, "init runs first in every pool process"
    return _WORKER(unit)
