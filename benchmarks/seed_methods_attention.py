"""The attention-side seed methods against their base at equal shape (issue 24; the lead merges these
entries into ``benchmarks/seed_methods.py``).

Each entry is one line: the method's field values against the base's, on the tasks it is about. Every
pair is trained at the default budget (``steps=400``, default TrainConfig) for ``--seeds`` seeds on one
CPU thread (training is deterministic on CPU, so val_loss does not depend on the machine's load), and
measured in the same run (``evaluate``'s prefill latency of the seed-0 model, params): reported are
val_loss mean and spread (max - min over seeds) per arm, and the method's latency and params as ratios
to its base's.

    nice -n 5 python benchmarks/seed_methods_attention.py          # writes seed_methods_cpu_attention.json
    nice -n 5 python benchmarks/seed_methods_attention.py --latency-only

``--latency-only`` skips training: each method and its base are built (seed 0, untrained), and their
forward at batch 1 over 256 tokens is timed in interleaved rounds (median ms, ratio method/base), with
the FLOPs torch's counter sees on those very models and inputs (for dynamic depth: the tokens its
routers actually sent) and the parameters; writes ``seed_methods_cpu_attention_latency.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from archbench import Architecture
from archbench.evaluators import evaluate

RESULTS = Path(__file__).resolve().parent / "results"
SHAPE = dict(depth=4, width=128, heads=4, max_seq_len=256)  # the Architecture's defaults, named

# name: (method fields, base fields, tasks)
METHODS: dict[str, tuple[dict, dict, tuple[str, ...]]] = {
    "primer_qkv_conv": ({"qkv_conv": True}, {}, ("charlm",)),
    "relative_positions": ({"pos_encoding": "relative"}, {}, ("charlm", "recall")),
    "relaxed_recursion_r8": ({"unique_layers": 2, "recursion_rank": 8}, {"unique_layers": 2}, ("charlm",)),
    "dynamic_depth_c05": ({"depth_capacity": 0.5}, {}, ("charlm", "recall")),
}


def run_arm(fields: dict, task: str, seeds: int, budget: str) -> dict:
    arch = Architecture(**{**SHAPE, **fields})
    losses, latencies, params = [], [], None
    for seed in range(seeds):
        r = evaluate(arch, task, budget, seed=seed, measure=seed == 0)  # latency does not depend on the seed
        losses.append(r.metrics["val_loss"])
        latencies.append(r.metrics.get("latency_ms"))
        params = r.metrics.get("params") or params
    lat = [x for x in latencies if x is not None]
    return {
        "arch": arch.describe(),
        "arch_id": arch.arch_id,
        "val_loss": losses,
        "val_loss_mean": statistics.fmean(losses),
        "val_loss_spread": max(losses) - min(losses),
        "latency_ms": statistics.median(lat) if lat else None,
        "params": params,
    }


def latency_only(names: list[str], rounds: int, out: Path) -> None:
    """Forward latency, FLOPs and params of each method and its base, untrained, side by side."""
    from archbench import build
    from archbench.latency.flops import count_model_flops
    from archbench.search_space.model import count_params

    rows = []
    idx = torch.randint(0, 256, (1, 256), generator=torch.Generator().manual_seed(0))
    for name in names:
        method, base, _ = METHODS[name]
        models = {}
        for arm, fields in (("base", base), ("method", method)):
            torch.manual_seed(0)
            models[arm] = (Architecture(**{**SHAPE, **fields}), build(Architecture(**{**SHAPE, **fields})).eval())
        times: dict[str, list[float]] = {"base": [], "method": []}
        with torch.no_grad():
            for _ in range(3):  # warm-up
                for _, m in models.values():
                    m(idx)
            for _ in range(rounds):
                for arm, (_, m) in models.items():
                    t = time.perf_counter()
                    m(idx)
                    times[arm].append((time.perf_counter() - t) * 1e3)
            flops = {arm: count_model_flops(m, idx).total for arm, (_, m) in models.items()}
        med = {arm: statistics.median(v) for arm, v in times.items()}
        params = {arm: count_params(m) for arm, (_, m) in models.items()}
        row = {
            "method": name,
            "base_arch": models["base"][0].describe(),
            "method_arch": models["method"][0].describe(),
            "latency_ms": med,
            "latency_ratio": med["method"] / med["base"],
            "flops": flops,
            "flops_ratio": flops["method"] / flops["base"],
            "params": params,
            "params_ratio": params["method"] / params["base"],
        }
        rows.append(row)
        print(
            f"{name:22s} latency x{row['latency_ratio']:.2f} flops x{row['flops_ratio']:.3f} "
            f"params x{row['params_ratio']:.3f}",
            flush=True,
        )
    doc = {
        "command": "python benchmarks/seed_methods_attention.py " + " ".join(sys.argv[1:]),
        "what": "untrained (seed 0) forward at batch 1 x 256 tokens, interleaved rounds, median ms; FLOPs as torch's "
        "counter sees them on the same models and inputs",
        "rounds": rounds,
        "shape": SHAPE,
        "machine": f"{platform.machine()} {platform.system()}, 1 torch thread, a 2-core CPU shared with other work",
        "torch": torch.__version__,
        "rows": rows,
    }
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")


def write(args: argparse.Namespace, started: float, rows: list[dict]) -> None:
    out = {
        "command": "python benchmarks/seed_methods_attention.py " + " ".join(sys.argv[1:]),
        "budget": args.budget,
        "seeds": args.seeds,
        "shape": SHAPE,
        "machine": f"{platform.machine()} {platform.system()}, 1 torch thread, a 2-core CPU shared with other work",
        "torch": torch.__version__,
        "wall_s": round(time.time() - started, 1),
        "spread": "max - min of val_loss over seeds",
        "latency": "evaluate's prefill latency of the seed-0 model; ratio method/base from the same run",
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", default="steps=400")
    parser.add_argument("--only", nargs="*", default=list(METHODS))
    parser.add_argument("--tasks", nargs="*", default=["charlm", "recall"])
    parser.add_argument("--out", default=str(RESULTS / "seed_methods_cpu_attention.json"))
    parser.add_argument("--latency-only", action="store_true")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.latency_only:
        latency_only(args.only, args.rounds, RESULTS / "seed_methods_cpu_attention_latency.json")
        return 0
    started = time.time()
    rows, bases = [], {}
    pairs = [(name, task) for task in args.tasks for name in args.only if task in METHODS[name][2]]
    for name, task in pairs:  # charlm first: every method has a row there
        method, base, _ = METHODS[name]
        key = (json.dumps(base, sort_keys=True), task)
        if key not in bases:  # one base run serves every method with that base
            bases[key] = run_arm(base, task, args.seeds, args.budget)
        b, m = bases[key], run_arm(method, task, args.seeds, args.budget)
        row = {
            "method": name,
            "task": task,
            "base": b,
            "method_arm": m,
            "delta_val_loss": m["val_loss_mean"] - b["val_loss_mean"],
            "latency_ratio": (m["latency_ms"] / b["latency_ms"]) if m["latency_ms"] and b["latency_ms"] else None,
            "params_ratio": m["params"] / b["params"] if m["params"] and b["params"] else None,
        }
        rows.append(row)
        write(args, started, rows)  # after every row: a run cut short still leaves what it measured
        print(
            f"{name:22s} {task:7s} base {b['val_loss_mean']:.4f}±{b['val_loss_spread']:.4f} "
            f"method {m['val_loss_mean']:.4f}±{m['val_loss_spread']:.4f} latency x{row['latency_ratio'] or 0:.2f} "
            f"params x{row['params_ratio'] or 0:.3f}",
            flush=True,
        )
    write(args, started, rows)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
