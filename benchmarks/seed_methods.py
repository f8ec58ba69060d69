"""Is each seed method worth it at this scale? Every method against its base at equal shape.

Each entry of :data:`METHODS` is ``(method name, base overrides, method overrides, tasks)``: the base is
:data:`SHAPE` (pre-LN, GELU, learned positions, static depth) with the base overrides, the method is the
base with the method overrides. Every method and its base train on each task at the default budget over
``--seeds`` seeds (the same seeds, so the same batches and, where shapes agree, the same initial weights);
reported: val_loss mean and spread (max - min), and, from the same run, the median prefill latency and
parameters as ratios to the base (the machine is shared: absolute times are noise, side-by-side ratios
less so). Adding a method is one line in :data:`METHODS`.

    nice -n 5 python benchmarks/seed_methods.py                       # every method
    nice -n 5 python benchmarks/seed_methods.py --methods relu2 dca   # a subset
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

from archbench import Architecture
from archbench.evaluators import DEFAULT_BUDGET, evaluate

RESULTS = Path(__file__).resolve().parent / "results"
SHAPE: dict[str, Any] = dict(depth=6, width=128, heads=4, residual="pre_ln", ffn_act="gelu")

Overrides = dict[str, Any]
# (method name, base overrides, method overrides, tasks)
METHODS: list[tuple[str, Overrides, Overrides, tuple[str, ...]]] = [
    ("relu2", {}, {"ffn_act": "relu2"}, ("charlm",)),
    ("layerscale", {}, {"residual": "layerscale"}, ("charlm",)),
    ("ln_scaling", {}, {"residual": "ln_scaling"}, ("charlm",)),
    ("depth_mup", {}, {"residual": "depth_mup"}, ("charlm",)),
    ("dca", {}, {"residual": "dca"}, ("charlm",)),
]
GROUPS = {"residual": ("relu2", "layerscale", "ln_scaling", "depth_mup", "dca")}  # --group names a result file


def run(arch: Architecture, task: str, budget: str, seed: int) -> dict[str, Any]:
    result = evaluate(arch, task=task, budget=budget, seed=seed, device="cpu")
    if result.status != "ok":
        raise SystemExit(f"{arch.describe()} on {task} seed {seed}: {result.status}: {result.reason}")
    m = result.metrics
    return {"val_loss": m["val_loss"], "latency_ms": m["latency_ms"], "params": m["params"]}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    losses = [r["val_loss"] for r in runs]
    return {
        "val_loss_mean": statistics.fmean(losses),
        "val_loss_spread": max(losses) - min(losses),
        "val_losses": losses,
        "latency_ms_median": statistics.median(r["latency_ms"] for r in runs),
        "params": runs[0]["params"],
    }


def main() -> None:
    names = [m[0] for m in METHODS]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="*", choices=names, help="a subset (default: all, or the --group's)")
    parser.add_argument("--group", choices=sorted(GROUPS), help="the methods of one group, written to its own file")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", default=str(DEFAULT_BUDGET))
    parser.add_argument("--out", type=Path, help="result file (default: results/seed_methods_cpu[_GROUP].json)")
    args = parser.parse_args()
    chosen = args.methods or (list(GROUPS[args.group]) if args.group else names)
    rows: list[dict[str, Any]] = []
    bases: dict[tuple[str, str], dict[str, Any]] = {}  # one base run per (base shape, task)
    print(f"{'method':12s} {'task':7s} {'val_loss base':>16s} {'val_loss method':>16s} {'latency':>8s} {'params':>7s}")
    for name, base_over, method_over, tasks in METHODS:
        if name not in chosen:
            continue
        base = Architecture(**{**SHAPE, **base_over})
        method = base.replace(**method_over)
        for task in tasks:
            key = (base.arch_id, task)
            if key not in bases:
                bases[key] = summary([run(base, task, args.budget, s) for s in range(args.seeds)])
            b = bases[key]
            start = time.perf_counter()
            m = summary([run(method, task, args.budget, s) for s in range(args.seeds)])
            row = {
                "method": name,
                "task": task,
                "base": base.to_dict(),
                "method_arch": method.to_dict(),
                "base_result": b,
                "method_result": m,
                "val_loss_delta": m["val_loss_mean"] - b["val_loss_mean"],
                "latency_ratio": m["latency_ms_median"] / b["latency_ms_median"],
                "params_ratio": m["params"] / b["params"],
                "seconds": time.perf_counter() - start,
            }
            rows.append(row)
            print(
                f"{name:12s} {task:7s} {b['val_loss_mean']:>9.4f}±{b['val_loss_spread']:<6.4f}"
                f"{m['val_loss_mean']:>9.4f}±{m['val_loss_spread']:<6.4f} {row['latency_ratio']:>8.3f}"
                f" {row['params_ratio']:>7.4f}",
                flush=True,
            )
    out = {
        "benchmark": "seed_methods",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "device": "cpu",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "threads": torch.get_num_threads()},
        "budget": args.budget,
        "seeds": args.seeds,
        "shape": SHAPE,
        "spread": "max - min over seeds",
        "latency": "median over seeds of each run's prefill latency_ms; ratio = method / base from the same run",
        "rows": rows,
    }
    path = args.out or RESULTS / f"seed_methods_cpu{'_' + args.group if args.group else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
