"""Tokenize a corpus once, in parallel, into shards: ``prepare(sources, tokenizer) -> directory``.

The corpus is cut into units of a few MB (groups of small files, byte ranges of a JSONL file, row groups
of a parquet file). Worker processes (one per core) each read a unit, split its documents into train and
validation (:func:`archbench.data.plan.is_validation_doc`), encode them in batches and write the tokens
to a part file; the parent shows a progress bar over the bytes done, then joins the parts in unit order
into shards (:mod:`archbench.data.shards`: nanoGPT's and llm.c's format, ``train_000000.bin``,
``val_000000.bin``, ...), and writes ``meta.json`` last. All of it happens in a hidden staging directory
that is renamed into place when complete (:mod:`archbench.data.cache`): a preparation that is killed or
fails leaves nothing another run could mistake for prepared data, and the next one starts clean.

The directory is the data cache's ``<digest>`` by default (so the same corpus and tokenizer are
prepared once), or ``out`` (``archbench data prepare --out DIR``). ``meta.json`` holds the tokenizer, the
digest, the shards and their token counts, the documents and bytes per split; ``val_docs.npy`` holds
each validation document's tokens and UTF-8 bytes, in order, from which bits per byte are counted.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from archbench.data import shards, sources
from archbench.data.cache import clear_stale, data_cache, publish, staging_dir, write_json
from archbench.data.plan import META, Plan, is_validation_doc, make_plan, read_meta, split_token_files
from archbench.data.sources import JSONL, PARQUET, TEXT, TOKENS, SourceFile
from archbench.data.tokenizer import HFTokenizer, load_tokenizer
from archbench.errors import ConfigError

UNIT_BYTES = 1 << 20  # work per unit: enough units to keep every core busy to the end, each worth a round trip
BATCH_BYTES = 1 << 20  # text encoded per tokenizer call
SHARD_TOKENS = 100_000_000  # tokens per shard (FineWeb's shards hold 100 M)
INLINE_BYTES = 8 << 20  # below this, worker processes cost more than they save
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


def prepare(
    data: str | Sequence[str],
    tokenizer: str | None = None,
    *,
    val: str | Sequence[str] | None = None,
    text_column: str = "text",
    val_fraction: float = 0.1,
    out: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    progress: bool = True,
    shard_tokens: int = SHARD_TOKENS,
) -> Path:
    """Prepared shards of ``data`` (see the module docstring); returns their directory, which already
    exists when the same data was prepared there before. Bad input raises ConfigError, writing nothing."""
    plan = make_plan(data, tokenizer, val, text_column, val_fraction)
    return build(plan, Path(out) if out is not None else data_cache() / plan.digest, workers, progress, shard_tokens)


def build(plan: Plan, target: Path, workers: int | None, progress: bool, shard_tokens: int = SHARD_TOKENS) -> Path:
    """Make ``plan``'s shards in ``target`` unless they are there already."""
    if shard_tokens < 1:
        raise ConfigError(f"shard_tokens={shard_tokens}: must be at least 1")
    meta_path = target / META
    if meta_path.is_file():
        if read_meta(target)["digest"] == plan.digest:
            return target
        raise ConfigError(f"{target} holds other prepared data: remove it or choose another directory")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(f"{target} exists and is not prepared data: choose a new or empty directory")
    clear_stale(target)
    staging = staging_dir(target)
    try:
        meta = _make(plan, staging, workers, progress, shard_tokens)
        write_json(staging / META, meta)
        if target.is_dir():
            target.rmdir()  # empty (checked above)
        publish(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


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


# ---- the worker ------------------------------------------------------------------------------------


class _Worker:
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
        acc = _Accumulator(self.tok, out, self.dtype)
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


class _Accumulator:
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


_WORKER: _Worker | None = None


def _init(*args: Any) -> None:
    """A pool process's initializer: it dies with its parent (a killed preparation leaves no worker writing
    into its staging directory), and its tokenizer runs single-threaded (one process per core already)."""
    global _WORKER
    _die_with_parent()
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _WORKER = _Worker(*args)


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):  # elsewhere an orphan finishes its unit, then fails to report, and exits
        pass


def _work(unit: Unit) -> UnitResult:
    assert _WORKER is not None, "_init runs first in every pool process"
    return _WORKER(unit)


# ---- the parent ------------------------------------------------------------------------------------


def _make(plan: Plan, staging: Path, workers: int | None, progress: bool, shard_tokens: int) -> dict[str, Any]:
    units = plan_units(plan)
    info = plan.tokenizer.info
    dtype = shards.token_dtype(info.vocab_size)
    parts = staging / "parts"
    parts.mkdir()
    args = (None if info.kind == "bytes" else info.source, str(parts), dtype.str, plan.val_fraction, plan.text_column)
    total = sum(u.size for u in units)
    n = min(workers or len(os.sched_getaffinity(0)), len(units))
    started = time.perf_counter()
    with _bar(progress, total, len(units), n) as advance:
        if n <= 1 or total < INLINE_BYTES:
            worker = _Worker(*args)
            results = []
            for u in units:
                results.append(worker(u))
                advance(u.size)
        else:
            results = _run_pool(units, args, n, advance)
    results.sort(key=lambda r: r.index)
    meta = _join(plan, results, parts, staging, dtype, shard_tokens)
    shutil.rmtree(parts)
    if isinstance(plan.tokenizer, HFTokenizer):
        shutil.copyfile(info.source, staging / "tokenizer.json")
    meta["prepare_s"] = round(time.perf_counter() - started, 3)
    meta["workers"] = n
    return meta


def _run_pool(units: list[Unit], args: tuple[Any, ...], n: int, advance: Any) -> list[UnitResult]:
    results = []
    with ProcessPoolExecutor(n, mp_context=get_context("spawn"), initializer=_init, initargs=args) as pool:
        pending: set[Future[UnitResult]] = {pool.submit(_work, u) for u in units}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for fut in done:
                    result = fut.result()  # a worker's ConfigError is raised here, as the one line it is
                    results.append(result)
                    advance(result.size)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return results


def _bar(progress: bool, total: int, units: int, workers: int) -> Any:
    if not progress:
        return nullcontext(lambda _n: None)
    from contextlib import contextmanager

    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    @contextmanager
    def bar() -> Iterator[Any]:
        columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
        with Progress("[progress.description]{task.description}", *columns, console=Console(stderr=True)) as p:
            task = p.add_task(f"tokenizing {units} units on {workers} worker(s)", total=total)
            yield lambda n: p.advance(task, n)

    return bar()


class _ShardWriter:
    """Appends tokens to ``<prefix>_000000.bin``, ``<prefix>_000001.bin``, ... of at most ``limit`` tokens."""

    def __init__(self, root: Path, prefix: str, dtype: np.dtype, limit: int) -> None:
        self.root, self.prefix, self.dtype, self.limit = root, prefix, dtype, limit
        self.shards: list[dict[str, Any]] = []
        self.f: Any = None
        self.count = 0

    def add(self, tokens: np.ndarray) -> None:
        while len(tokens):
            if self.f is None:
                name = f"{self.prefix}_{len(self.shards):06d}.bin"
                self.f = open(self.root / name, "wb")  # noqa: SIM115  (closed in _close)
                self.f.write(shards.header(0, self.dtype))
                self.shards.append({"file": name, "tokens": 0})
                self.count = 0
            take = tokens[: self.limit - self.count]
            self.f.write(take.tobytes())
            self.count += len(take)
            tokens = tokens[len(take) :]
            if self.count == self.limit:
                self._close()

    def _close(self) -> None:
        if self.f is not None:
            self.f.seek(0)
            self.f.write(shards.header(self.count, self.dtype))
            self.f.close()
            self.shards[-1]["tokens"] = self.count
            self.f = None

    def finish(self) -> list[dict[str, Any]]:
        self._close()
        return self.shards


def _join(
    plan: Plan, results: list[UnitResult], parts: Path, root: Path, dtype: np.dtype, shard_tokens: int
) -> dict[str, Any]:
    totals = {s: sum(r.tokens[s] for r in results) for s in (TRAIN, VAL)}
    where = ", ".join(f.name for f in plan.files[:3]) + (", ..." if len(plan.files) > 3 else "")
    if totals[TRAIN] + totals[VAL] == 0:
        raise ConfigError(f"the corpus ({where}) is empty: no document holds any text")
    if totals[TRAIN] == 0 or totals[VAL] < 2:
        raise ConfigError(
            f"the corpus ({where}) splits into {totals[TRAIN]} training and {totals[VAL]} validation tokens: "
            "give more documents, or a validation source (val=...)"
        )
    out: dict[str, list[dict[str, Any]]] = {}
    for split in (TRAIN, VAL):
        writer = _ShardWriter(root, split, dtype, shard_tokens)
        for r in results:
            part = parts / f"{r.index:06d}.{split}"
            if part.exists() and r.tokens[split]:
                writer.add(np.fromfile(part, dtype=dtype))
            part.unlink(missing_ok=True)
        out[split] = writer.finish()
    if not plan.tokenized:  # token files have no text: their bytes are counted by decoding (dataset.py)
        np.save(root / "val_docs.npy", np.concatenate([r.val_docs for r in results]))
    info = plan.tokenizer.info
    return {
        "format": "archbench-tokens",
        "version": 1,
        "digest": plan.digest,
        "tokenizer": {**info.__dict__, "file": "tokenizer.json" if info.kind == "hf" else None},
        "dtype": dtype.name,
        "shards": out,
        "tokens": totals,
        "documents": {s: sum(r.docs[s] for r in results) for s in (TRAIN, VAL)},
        "bytes": None if plan.tokenized else {s: sum(r.bytes[s] for r in results) for s in (TRAIN, VAL)},
        "skipped_documents": sum(r.skipped for r in results),
        "sources": [f.name for f in plan.files][:1000],
        "val_sources": [f.name for f in plan.val_files][:1000],
        "text_column": plan.text_column,
        "val_fraction": None if plan.val_files or plan.tokenized else plan.val_fraction,
    }
