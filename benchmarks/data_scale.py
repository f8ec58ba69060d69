"""Your own data at scale: parallel preparation against a one-document-at-a-time loop, and batch drawing from
a 1 GB and a 4 GB token corpus.

    python benchmarks/data_scale.py [--corpus-mb 32] [--sizes-gb 1,4] [--batches 2000] [--tmp /tmp] [--out PATH]

1. Preparation throughput. A text corpus of ``--corpus-mb`` MB (this Python's standard library sources,
   repeated: one document per file) and a byte-level BPE tokenizer (vocabulary 4096, trained here on a
   3 MB sample) are made under ``--tmp``. The baseline is what nanoGPT-style prepare scripts do in one
   process: read each document, encode it alone with the same tokenizer (end-of-text first), collect the
   ids, write a shard. archbench's ``prepare`` (one worker process per core, encode_batch per MB, parts
   joined into shards, ``meta.json``, atomic publish) runs on the same corpus. Reported: MB of text per
   second for each and their ratio (target >= 1.8x on 2 cores), and that both made the same number of
   tokens.
2. Batch drawing. Token corpora of each of ``--sizes-gb`` GB (random uint16 tokens in 100 M-token shards,
   plus a validation shard) are written under ``--tmp``; for each, a fresh process builds ``task=text``'s
   data for a 256-token context through the real path and draws ``--batches`` batches of 16 windows after
   a warm-up; its resident memory (RSS, with its file-backed and anonymous parts) is read after drawing.
   The time per batch is then measured for all corpora in one process, in alternating blocks of 50
   batches (so the load of a shared machine falls on all of them alike). Targets: the largest corpus
   within 10 % of the smallest in median time per batch and within 5 % in RSS.

Everything written under ``--tmp`` is deleted at the end. The machine's load (``/proc/loadavg``) before and
after is recorded: on a shared machine the preparation ratio falls with the other processes' load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "results" / "data_scale_cpu.json"
SHARD_TOKENS = 100_000_000
BATCH, SEQ_LEN = 16, 256


def load() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def make_corpus(root: Path, mb: float) -> tuple[int, int]:
    """Standard-library sources, repeated until ``mb`` MB: (documents, bytes)."""
    from archbench.evaluators.corpus import list_files, stdlib_root

    files = list_files(stdlib_root())
    root.mkdir(parents=True)
    n = size = 0
    while size < mb * 1e6:
        src = files[n % len(files)]
        raw = src.read_bytes()
        (root / f"{n:06d}_{src.name}.txt").write_bytes(raw)
        n += 1
        size += len(raw)
    return n, size


def train_tokenizer(corpus: Path, path: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=4096, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    sample, size = [], 0
    for p in sorted(corpus.iterdir()):
        sample.append(p.read_text(encoding="utf-8", errors="replace"))
        size += p.stat().st_size
        if size > 3e6:
            break
    tok.train_from_iterator(sample, trainer)
    tok.save(str(path))


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the preparation's workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def baseline(corpus: Path, tokenizer: Path, out: Path) -> tuple[float, int]:
    """One process, one document at a time (nanoGPT-style): seconds and tokens."""
    from tokenizers import Tokenizer

    from archbench.data import write_shard

    started = time.perf_counter()
    tok = Tokenizer.from_file(str(tokenizer))
    eot = tok.token_to_id("<|endoftext|>")
    parts = []
    for p in sorted(corpus.iterdir()):
        text = p.read_bytes().decode("utf-8", errors="replace")
        if not text:
            continue  # as prepare: an empty document adds nothing
        ids = [eot, *tok.encode(text, add_special_tokens=False).ids]
        parts.append(np.array(ids, dtype=np.uint16))
    tokens = np.concatenate(parts)
    out.mkdir()
    for i in range(0, len(tokens), SHARD_TOKENS):
        write_shard(out / f"train_{i // SHARD_TOKENS:06d}.bin", tokens[i : i + SHARD_TOKENS], 4096)
    return time.perf_counter() - started, len(tokens)


def prepare_run(corpus: Path, tokenizer: Path, out: Path) -> tuple[float, int, int]:
    from archbench.data import DataSpec, prepare

    started = time.perf_counter()
    root = prepare(DataSpec(str(corpus), str(tokenizer)), out=out, progress=False)
    seconds = time.perf_counter() - started
    meta = json.loads((root / "meta.json").read_text())
    return seconds, meta["tokens"]["train"] + meta["tokens"]["val"], meta["workers"]


def write_tokens(root: Path, gb: float, seed: int) -> int:
    from archbench.data import write_shard

    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    total = int(gb * 1e9 / 2)
    for i, start in enumerate(range(0, total, SHARD_TOKENS)):
        write_shard(root / f"train_{i:06d}.bin", rng.integers(0, 256, min(SHARD_TOKENS, total - start)), 256)
    write_shard(root / "val_000000.bin", rng.integers(0, 256, 1 << 20), 256)
    return total


def task_data(data: str):
    from archbench import Architecture
    from archbench.evaluators import get_task

    arch = Architecture(depth=1, width=32, heads=2, max_seq_len=SEQ_LEN, vocab_size=256)
    return get_task("text", data=data, val_tokens=4096, batch_size=BATCH).prepare(arch)


def timed_batches(data, gen, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        batch = data.train_batch(gen, BATCH)
        times.append(time.perf_counter() - t)
    assert batch.x.shape == (BATCH, SEQ_LEN)
    return times


def draw(data: str, batches: int) -> dict[str, float]:
    """In this (fresh) process: task=text's data for ``data``, ``batches`` batches, then the RSS."""
    import torch

    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    prepared = task_data(data)
    timed_batches(prepared, gen, 100)  # warm-up
    times = timed_batches(prepared, gen, batches)
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    kb = lambda key: float(status[key].split()[0])  # noqa: E731
    return {
        "ms_per_batch_median": 1000 * float(np.median(times)),
        "rss_mb": kb("VmRSS") / 1024,
        "rss_file_mb": kb("RssFile") / 1024,
        "rss_anon_mb": kb("RssAnon") / 1024,
    }


def paired(dirs: list[str], batches: int, block: int = 50) -> dict[str, float]:
    """Time per batch of each corpus, drawn in alternating blocks in one process (load drifts hit both)."""
    import torch

    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    prepared = [task_data(d) for d in dirs]
    for p in prepared:
        timed_batches(p, gen, 100)
    times: list[list[float]] = [[] for _ in dirs]
    for _ in range(max(1, batches // block)):
        for i, p in enumerate(prepared):
            times[i].extend(timed_batches(p, gen, block))
    return {d: 1000 * float(np.median(t)) for d, t in zip(dirs, times, strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus-mb", type=float, default=32.0)
    parser.add_argument("--sizes-gb", default="1,4")
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--tmp", default="/tmp")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--draw", help=argparse.SUPPRESS)  # internal: one corpus, in a fresh process
    parser.add_argument("--pair", nargs="+", help=argparse.SUPPRESS)  # internal: corpora timed side by side
    args = parser.parse_args()
    if args.draw:
        print(json.dumps(draw(args.draw, args.batches)))
        return
    if args.pair:
        print(json.dumps(paired(args.pair, args.batches)))
        return

    work = Path(tempfile.mkdtemp(prefix="archbench-data-scale-", dir=args.tmp))
    os.environ["ARCHBENCH_CACHE_DIR"] = str(work / "cache")
    machine = {"cpus": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)), "python": platform.python_version()}
    command = " ".join(["python", "benchmarks/data_scale.py", *sys.argv[1:]])
    result: dict[str, object] = {"command": command, "machine": machine, "load_before": load()}
    try:
        result["prepare"] = prepare_benchmark(work, args.corpus_mb)
        result["draw"] = draw_benchmark(work, [float(x) for x in args.sizes_gb.split(",")], args.batches)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["load_after"] = load()
    prep, drawn = result["prepare"], result["draw"]
    assert isinstance(prep, dict) and isinstance(drawn, dict)
    result["targets"] = {
        "prepare_ratio_at_least": 1.8,
        "prepare_ratio_met": prep["ratio"] >= 1.8,
        "draw_time_within": 0.10,
        "draw_time_met": abs(drawn["time_ratio_largest_to_smallest"] - 1) <= 0.10,
        "draw_rss_within": 0.05,
        "draw_rss_met": abs(drawn["rss_ratio_largest_to_smallest"] - 1) <= 0.05,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["targets"], indent=2))


def prepare_benchmark(work: Path, corpus_mb: float) -> dict[str, object]:
    corpus = work / "corpus"
    docs, nbytes = make_corpus(corpus, corpus_mb)
    train_tokenizer(corpus, work / "tokenizer.json")
    cpu = cpu_seconds()
    base_s, base_tokens = baseline(corpus, work / "tokenizer.json", work / "baseline")
    base_cpu, cpu = cpu_seconds() - cpu, cpu_seconds()
    par_s, par_tokens, workers = prepare_run(corpus, work / "tokenizer.json", work / "prepared")
    par_cpu = cpu_seconds() - cpu
    mb = nbytes / 1e6
    print(f"prepare: {mb:.1f} MB, baseline {mb / base_s:.2f} MB/s, archbench {mb / par_s:.2f} MB/s "
          f"({workers} workers): {base_s / par_s:.2f}x; tokens {base_tokens:,} vs {par_tokens:,}")  # fmt: skip
    for d in ("corpus", "baseline", "prepared"):
        shutil.rmtree(work / d)
    return {
        "corpus_mb": round(mb, 1), "documents": docs, "tokenizer": "byte-level BPE, vocab 4096",
        "baseline_s": round(base_s, 2), "baseline_mb_per_s": round(mb / base_s, 3),
        "prepare_s": round(par_s, 2), "prepare_mb_per_s": round(mb / par_s, 3), "workers": workers,
        "ratio": round(base_s / par_s, 3), "tokens_baseline": base_tokens, "tokens_prepare": par_tokens,
        "baseline_cpu_s": round(base_cpu, 2), "prepare_cpu_s": round(par_cpu, 2),
        "cpu_per_wall_baseline": round(base_cpu / base_s, 2), "cpu_per_wall_prepare": round(par_cpu / par_s, 2),
    }  # fmt: skip


def draw_benchmark(work: Path, sizes_gb: list[float], batches: int) -> dict[str, object]:
    dirs = {f"{gb:g}": work / f"tokens_{gb:g}gb" for gb in sizes_gb}
    draws = {name: {"tokens": write_tokens(d, float(name), seed=int(float(name) * 10))} for name, d in dirs.items()}
    for name, d in dirs.items():  # resident memory: each corpus in a fresh process
        draws[name].update(_run(["--draw", str(d), "--batches", str(batches)]))
        print(f"draw {name} GB alone: {draws[name]}")
    pair = _run(["--pair", *map(str, dirs.values()), "--batches", str(batches)])
    for name, d in dirs.items():
        draws[name]["ms_per_batch_median_paired"] = pair[str(d)]
    print(f"draw, side by side: {pair}")
    for d in dirs.values():
        shutil.rmtree(d)
    small, large = draws[f"{min(sizes_gb):g}"], draws[f"{max(sizes_gb):g}"]
    return {
        "batch": BATCH, "seq_len": SEQ_LEN, "batches": batches, "by_gb": draws,
        "time_ratio_largest_to_smallest": round(
            large["ms_per_batch_median_paired"] / small["ms_per_batch_median_paired"], 3),
        "rss_ratio_largest_to_smallest": round(large["rss_mb"] / small["rss_mb"], 3),
    }  # fmt: skip


def _run(args: list[str]) -> dict[str, float]:
    run = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if run.returncode:
        raise SystemExit(run.stderr[-3000:])
    return json.loads(run.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
