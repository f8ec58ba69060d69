"""Is each seed method worth it at this scale? Every method against its base at equal shape.

Each entry of :data:`METHODS` is ``(method name, base overrides, method overrides, tasks)``: the base is
:data:`SHAPE` (pre-LN, GELU, learned positions, no sharing, static depth) with the base overrides, the
method is the base with the method overrides. Every method and its base train on each task at the default
budget over ``--seeds`` seeds (the same seeds, so the same batches and, where shapes agree, the same
initial weights); reported: val_loss (and val_acc where the task has it) mean and spread (max - min),
parameters, forward FLOPs, and the prefill latency (batch 1, ``max_seq_len`` tokens, float) of every
base and method timed side by side in interleaved rounds at the end of the run, as ratios to the base:
the machine is shared, so absolute times are noise and only ratios from one run mean anything. Adding a
method is one line in :data:`METHODS`; a :data:`GROUPS` entry names a set of them and its result file.

:data:`SHAPE` is small (width 64, 64 tokens) so that 3 seeds of a group train at the default budget on a
shared 2-core CPU in under an hour. ``--latency-only`` trains nothing: params, FLOPs and latency ratios
of the untrained models (``seed_methods_cpu[_GROUP]_latency.json``).

    nice -n 5 python benchmarks/seed_methods.py                       # every method
    nice -n 5 python benchmarks/seed_methods.py --methods relu2 dca   # a subset
    nice -n 5 python benchmarks/seed_methods.py --group attention --latency-only
    # one process per seed into a cache, then the table (and the latencies) from it:
    for s in 0 1 2; do nice -n 5 python benchmarks/seed_methods.py --group residual --seed $s --cache c.jsonl & done
    wait; nice -n 5 python benchmarks/seed_methods.py --group residual --cache c.jsonl
    python benchmarks/seed_methods.py --methods layerscale --seeds 1 --budget steps=20 --out /tmp/x.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from archbench import Architecture, build
from archbench.evaluators import DEFAULT_BUDGET, evaluate
from archbench.latency import count_flops
from archbench.search_space.model import count_params

RESULTS = Path(__file__).resolve().parent / "results"
SHAPE: dict[str, Any] = dict(depth=6, width=64, heads=4, max_seq_len=64, residual="pre_ln", ffn_act="gelu")

QUALITY = ("val_loss", "val_acc")  # what a row reports of each trained seed, where the task has it
Overrides = dict[str, Any]
# (method name, base overrides, method overrides, tasks)
METHODS: list[tuple[str, Overrides, Overrides, tuple[str, ...]]] = [
    ("relu2", {}, {"ffn_act": "relu2"}, ("charlm",)),
    ("layerscale", {}, {"residual": "layerscale"}, ("charlm",)),
    ("ln_scaling", {}, {"residual": "ln_scaling"}, ("charlm",)),
    ("depth_mup", {}, {"residual": "depth_mup"}, ("charlm",)),
    ("dca", {}, {"residual": "dca"}, ("charlm",)),
    ("primer_qkv_conv", {}, {"qkv_conv": True}, ("charlm",)),
    ("relative_positions", {}, {"pos_encoding": "relative"}, ("charlm", "recall")),
    ("relaxed_recursion_r8", {"unique_layers": 2}, {"recursion_rank": 8}, ("charlm",)),
    ("dynamic_depth_c05", {}, {"depth_capacity": 0.5}, ("charlm", "recall")),
]
GROUPS = {  # --group names a result file
    "residual": ("relu2", "layerscale", "ln_scaling", "depth_mup", "dca"),
    "attention": ("primer_qkv_conv", "relative_positions", "relaxed_recursion_r8", "dynamic_depth_c05"),
}


def trained(arch: Architecture, task: str, budget: str, seed: int, cache: Path | None) -> dict[str, float]:
    """``val_loss`` (and ``val_acc`` where the task reports it) after training, from ``cache`` (JSON lines)
    when a run of the same arch, task, budget and seed wrote it there: several processes (one per
    ``--seed``) can fill it, and a last run reads it whole."""
    key = {"arch_id": arch.arch_id, "task": task, "budget": budget, "seed": seed}
    if cache is not None and cache.exists():
        for line in cache.read_text().splitlines():
            row = json.loads(line)
            if {k: row[k] for k in key} == key:
                return {m: float(row[m]) for m in QUALITY if m in row}
    result = evaluate(arch, task=task, budget=budget, seed=seed, device="cpu", measure=False, validate_quant=False)
    if result.status != "ok":
        raise SystemExit(f"{arch.describe()} on {task} seed {seed}: {result.status}: {result.reason}")
    metrics = {m: float(result.metrics[m]) for m in QUALITY if m in result.metrics}  # type: ignore[arg-type]
    if cache is not None:
        with cache.open("a") as f:
            f.write(json.dumps({**key, **metrics}) + "\n")
    return metrics


def summary(arch: Architecture, runs: list[dict[str, float]]) -> dict[str, Any]:
    """Mean and spread of each quality metric every seed reported (none for ``--latency-only``), with
    params and forward FLOPs (torch's counter on a meta copy: dynamic depth counted at its capacity)."""
    with torch.device("meta"):
        params = count_params(build(arch))
    out: dict[str, Any] = {}
    for metric in QUALITY:
        values = [run[metric] for run in runs if metric in run]
        if values and len(values) == len(runs):
            out |= {f"{metric}_mean": statistics.fmean(values), f"{metric}_spread": max(values) - min(values)}
            out[f"{metric}es" if metric.endswith("loss") else f"{metric}s"] = values
    return {**out, "params": params, "flops": count_flops(arch, 1, arch.max_seq_len).total}


def latencies(archs: dict[str, Architecture], rounds: int, calls: int = 5) -> dict[str, float]:
    """Median ms of one prefill (batch 1, max_seq_len tokens) per arch, interleaved so load hits all alike."""
    torch.manual_seed(0)
    models = {key: build(arch).eval() for key, arch in archs.items()}
    inputs = {key: torch.randint(0, a.vocab_size, (1, a.max_seq_len)) for key, a in archs.items()}
    samples: dict[str, list[float]] = {key: [] for key in archs}
    with torch.no_grad():
        for key, model in models.items():  # warm-up, never timed
            for _ in range(3):
                model(inputs[key])
        for _ in range(rounds):
            for key, model in models.items():
                start = time.perf_counter()
                for _ in range(calls):
                    model(inputs[key])
                samples[key].append((time.perf_counter() - start) * 1e3 / calls)
    return {key: statistics.median(v) for key, v in samples.items()}


def compare(args: argparse.Namespace, chosen: list[str], seeds: list[int]) -> tuple[list[dict], dict]:
    """One row per (method, task): base and method trained on ``seeds`` (none with ``--latency-only``),
    task-major so that every method's first task finishes before any method's second. Also returns the
    archs to time."""
    rows: list[dict[str, Any]] = []
    bases: dict[tuple[str, str], dict[str, Any]] = {}  # one base run per (base shape, task)
    timed: dict[str, Architecture] = {}
    tasks = ("-",) if args.latency_only else tuple(dict.fromkeys(t for m in METHODS for t in m[3]))
    pairs = [(m, t) for t in tasks for m in METHODS if m[0] in chosen and (args.latency_only or t in m[3])]
    print(f"{'method':22s} {'task':7s} {'val_loss base':>16s} {'val_loss method':>16s} {'params':>7s} {'flops':>7s}")
    for (name, base_over, method_over, _), task in pairs:
        base = Architecture(**{**SHAPE, **base_over})
        method = base.replace(**method_over)
        key = (base.arch_id, task)
        if key not in bases:
            bases[key] = summary(
                base, [] if args.latency_only else [trained(base, task, args.budget, s, args.cache) for s in seeds]
            )
        b = bases[key]
        start = time.perf_counter()
        m = summary(
            method, [] if args.latency_only else [trained(method, task, args.budget, s, args.cache) for s in seeds]
        )
        timed[base.arch_id], timed[method.arch_id] = base, method
        row = {
            "method": name,
            "task": task,
            "base": base.to_dict(),
            "method_arch": method.to_dict(),
            "base_arch_id": base.arch_id,
            "method_arch_id": method.arch_id,
            "base_result": b,
            "method_result": m,
            "params_ratio": m["params"] / b["params"],
            "flops_ratio": m["flops"] / b["flops"],
            "seconds": time.perf_counter() - start,
        }
        for metric in QUALITY:
            if f"{metric}_mean" in b and f"{metric}_mean" in m:
                row[f"{metric}_delta"] = m[f"{metric}_mean"] - b[f"{metric}_mean"]
        rows.append(row)
        loss = (
            f"{b['val_loss_mean']:>9.4f}±{b['val_loss_spread']:<6.4f}{m['val_loss_mean']:>9.4f}±{m['val_loss_spread']:<6.4f}"
            if "val_loss_mean" in m
            else f"{'-':>16s} {'-':>16s}"
        )
        acc = f" acc {b['val_acc_mean']:.3f} -> {m['val_acc_mean']:.3f}" if task == "recall" else ""
        print(f"{name:22s} {task:7s} {loss} {row['params_ratio']:>7.4f} {row['flops_ratio']:>7.4f}{acc}", flush=True)
    return rows, timed


def main() -> None:
    names = [m[0] for m in METHODS]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="*", choices=names, help="a subset (default: all, or the --group's)")
    parser.add_argument("--group", choices=sorted(GROUPS), help="the methods of one group, written to its own file")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed", type=int, nargs="*", help="train only these seeds into --cache (no result file)")
    parser.add_argument("--cache", type=Path, help="JSON lines of finished runs, read and appended")
    parser.add_argument("--budget", default=str(DEFAULT_BUDGET))
    parser.add_argument("--latency-only", action="store_true", help="no training: params, FLOPs and latency ratios")
    parser.add_argument("--rounds", type=int, default=30, help="interleaved latency rounds")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    parser.add_argument(
        "--out", type=Path, help="result file (default: results/seed_methods_cpu[_GROUP][_latency].json)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    chosen = args.methods or (list(GROUPS[args.group]) if args.group else names)
    seeds = args.seed if args.seed is not None else list(range(args.seeds))
    if args.seed is not None and (args.cache is None or args.latency_only):
        parser.error("--seed trains into --cache: give --cache too, and no --latency-only")
    rows, timed = compare(args, chosen, seeds)
    if args.seed is not None:
        print(f"seeds {seeds} are in {args.cache}")
        return
    ms = latencies(timed, args.rounds)
    print(f"{'method':22s} {'latency ms base':>16s} {'method':>8s} {'ratio':>6s}")
    for row in rows:
        base_ms, method_ms = ms[row["base_arch_id"]], ms[row["method_arch_id"]]
        row.update(base_latency_ms=base_ms, method_latency_ms=method_ms, latency_ratio=method_ms / base_ms)
        print(f"{row['method']:22s} {base_ms:>16.3f} {method_ms:>8.3f} {method_ms / base_ms:>6.3f}")
    out = {
        "benchmark": "seed_methods",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "device": "cpu",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "threads": torch.get_num_threads()},
        "torch": torch.__version__,
        "budget": None if args.latency_only else args.budget,
        "seeds": None if args.latency_only else args.seeds,
        "shape": SHAPE,
        "spread": "max - min over seeds",
        "latency": f"median ms of a prefill (batch 1, max_seq_len tokens, fp32, {args.threads} thread(s)), "
        f"{args.rounds} interleaved rounds of 5 calls, untrained weights; ratio = method / base",
        "rows": rows,
    }
    suffix = ("_" + args.group if args.group else "") + ("_latency" if args.latency_only else "")
    path = args.out or RESULTS / f"seed_methods_cpu{suffix}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
