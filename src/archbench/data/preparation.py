"""Tokenize a corpus once, in parallel, into shards: ``prepare(DataSpec(sources, tokenizer)) -> directory``.

The corpus is cut into units of about 1 MB (groups of small files, byte ranges of a JSONL file, row groups
of a parquet file; :mod:`archbench.data.units`). Worker processes (one per core) each read a unit, split
its documents into train and validation, encode them in batches and write the tokens to a part file; the
parent shows a progress bar over the bytes done, then joins the parts in unit order
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
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from contextlib import nullcontext
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from archbench.data import shards
from archbench.data.cache import clear_stale, data_cache, publish, staging_dir, write_json
from archbench.data.plan import META, DataSpec, Plan, make_plan, read_meta
from archbench.data.tokenizer import HFTokenizer
from archbench.data.units import TRAIN, VAL, Unit, UnitResult, Worker, plan_units
from archbench.data.units import init as init_worker
from archbench.data.units import work as run_unit
from archbench.errors import ConfigError

SHARD_TOKENS = 100_000_000  # tokens per shard (FineWeb's shards hold 100 M)
INLINE_BYTES = 8 << 20  # below this, worker processes cost more than they save


def prepare(
    spec: DataSpec,
    *,
    out: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    progress: bool = True,
    shard_tokens: int = SHARD_TOKENS,
) -> Path:
    """Prepared shards of the data ``spec`` names (see the module docstring); returns their directory, which
    already exists when the same data was prepared there before. Bad input raises ConfigError, writing nothing."""
    plan = make_plan(spec)
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


# ---- the parent ------------------------------------------------------------------------------------


def _make(plan: Plan, staging: Path, workers: int | None, progress: bool, shard_tokens: int) -> dict[str, Any]:
    todo = plan_units(plan)
    info = plan.tokenizer.info
    dtype = shards.token_dtype(info.vocab_size)
    parts = staging / "parts"
    parts.mkdir()
    args = (None if info.kind == "bytes" else info.source, str(parts), dtype.str, plan.val_fraction, plan.text_column)
    total = sum(u.size for u in todo)
    n = min(workers or len(os.sched_getaffinity(0)), len(todo))
    n = 1 if total < INLINE_BYTES else n
    started = time.perf_counter()
    with _bar(progress, total, len(todo), n) as advance:
        if n <= 1:
            worker = Worker(*args)
            results = []
            for u in todo:
                results.append(worker(u))
                advance(u.size)
        else:
            results = _run_pool(todo, args, n, advance)
    results.sort(key=lambda r: r.index)
    meta = _join(plan, results, parts, staging, dtype, shard_tokens)
    shutil.rmtree(parts)
    if isinstance(plan.tokenizer, HFTokenizer):
        shutil.copyfile(info.source, staging / "tokenizer.json")
    meta["prepare_s"] = round(time.perf_counter() - started, 3)
    meta["workers"] = n
    return meta


def _run_pool(todo: list[Unit], args: tuple[Any, ...], n: int, advance: Any) -> list[UnitResult]:
    results = []
    spawn, initargs = get_context("spawn"), (os.getpid(), *args)
    with ProcessPoolExecutor(n, mp_context=spawn, initializer=init_worker, initargs=initargs) as pool:
        pending: set[Future[UnitResult]] = {pool.submit(run_unit, u) for u in todo}
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
        writer = shards.ShardWriter(root, split, dtype, shard_tokens)
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
