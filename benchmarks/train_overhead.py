"""Overhead of archbench's training loop against a bare PyTorch loop on the same model and data.

Both loops draw the same batches from the same task, run the same model (a fresh copy of one
initialisation each time) with AdamW and gradient clipping; the bare loop has a fixed learning rate
and no loss checks, archbench's :func:`archbench.evaluators.train` adds its warm-up + cosine schedule,
parameter groups, loss watch (divergence) and bookkeeping. Runs alternate (archbench, bare, archbench,
...) so that drift in a shared machine's load hits both; the headline is the median over rounds of
the ratio of each round's two runs (the ratio of the two median tokens/s is reported too).
Target: archbench >= 0.95x bare. Prints a table and writes JSON to ``benchmarks/results/``.

    python benchmarks/train_overhead.py [--steps 40] [--rounds 7] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from archbench import Architecture
from archbench.evaluators import Budget, TrainConfig, get_task, resolve_device, train
from archbench.evaluators.measurement import fingerprint
from archbench.evaluators.task import TaskData
from archbench.evaluators.trainer import lm_loss

RESULTS = Path(__file__).resolve().parent / "results"
TARGET = 0.95


def bare_loop(
    model: nn.Module, data: TaskData, steps: int, batch_size: int, seed: int, device: torch.device, lr: float
) -> float:
    """Tokens per second of a plain AdamW loop: batch, forward, loss, backward, clip, step."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), fused=device.type == "cuda")
    gen = torch.Generator().manual_seed(seed)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    tokens = 0
    start = time.perf_counter()
    for _ in range(steps):
        batch = data.train_batch(gen, batch_size)
        x, y = batch.x.to(device, non_blocking=True), batch.y.to(device, non_blocking=True)
        with autocast:
            logits = model(x)
        loss = lm_loss(logits, y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += batch.tokens
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return tokens / (time.perf_counter() - start)


def archbench_loop(
    model: nn.Module, data: TaskData, steps: int, batch_size: int, seed: int, device: torch.device, lr: float
) -> float:
    out = train(
        model, data, Budget("steps", steps), TrainConfig(lr=lr), batch_size=batch_size,
        generator=torch.Generator().manual_seed(seed), device=device,
    )  # fmt: skip
    assert out.diverged is None, out.diverged
    assert out.tokens_per_s is not None
    return out.tokens_per_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="charlm")
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--seq", type=int, default=64, help="max_seq_len of the model (default 64)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=40, help="steps per timed run (default 40)")
    parser.add_argument("--rounds", type=int, default=7, help="timed runs of each loop (default 7)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--out", default=None, help="JSON path (default results/train_overhead_<device>.json)")
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    arch = Architecture(depth=args.depth, width=args.width, heads=4, max_seq_len=args.seq)
    task = get_task(args.task)
    data = task.prepare(arch)
    torch.manual_seed(0)
    initial = task.build(arch).to(device)
    lr = TrainConfig().lr
    loops = {"archbench": archbench_loop, "bare": bare_loop}
    console = Console()
    console.print(f"train overhead: {arch.describe()} on {args.task}, batch {args.batch}, {args.steps} steps x "
                  f"{args.rounds} rounds each, {device}, {torch.get_num_threads()} thread(s)")  # fmt: skip

    for fn in loops.values():  # warm-up: allocator, kernels, caches
        fn(copy.deepcopy(initial), data, max(3, args.steps // 4), args.batch, 0, device, lr)
    samples: dict[str, list[float]] = {name: [] for name in loops}
    t0 = time.perf_counter()
    for r in range(args.rounds):
        order = list(loops) if r % 2 == 0 else list(reversed(loops))
        for name in order:
            samples[name].append(loops[name](copy.deepcopy(initial), data, args.steps, args.batch, r, device, lr))
    medians = {name: statistics.median(v) for name, v in samples.items()}
    # Each round's two runs are back to back, so their ratio cancels most of the machine's load drift.
    paired = [a / b for a, b in zip(samples["archbench"], samples["bare"], strict=True)]
    ratio = statistics.median(paired)

    table = Table(title=f"training throughput, {arch.describe()} ({device})")
    for col in ("loop", "median tokens/s", "min", "max", "runs"):
        table.add_column(col)
    for name, v in samples.items():
        table.add_row(name, f"{medians[name]:,.0f}", f"{min(v):,.0f}", f"{max(v):,.0f}", str(len(v)))
    console.print(table)
    verdict = "meets" if ratio >= TARGET else "BELOW"
    console.print(
        f"archbench / bare = {ratio:.3f} (median of {len(paired)} paired rounds; ratio of medians "
        f"{medians['archbench'] / medians['bare']:.3f}) ({verdict} target {TARGET})"
    )

    out = Path(args.out) if args.out else RESULTS / f"train_overhead_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "benchmark": "train_overhead",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])]),
        "arch": arch.to_dict(),
        "task": args.task,
        "batch": args.batch,
        "steps_per_run": args.steps,
        "rounds": args.rounds,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "tokens_per_s": samples,
        "median_tokens_per_s": medians,
        "paired_ratios": paired,
        "ratio": ratio,
        "ratio_of_medians": medians["archbench"] / medians["bare"],
        "target": TARGET,
        "meets_target": ratio >= TARGET,
        "elapsed_s": time.perf_counter() - t0,
        "python": platform.python_version(),
        "hardware": fingerprint(device),
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
