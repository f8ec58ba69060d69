"""Does sparsity save real work? archbench's attention patterns timed side by side at one shape.

For each sequence length, the same q, k, v (random, fp32, B=2, H=4, D=64) go through archbench's
``dense`` (SDPA, causal), ``sliding_window`` and ``block_sparse`` (FlexAttention block masks, compiled)
and ``linear`` patterns, plus SDPA with the sliding window as a boolean mask (same numbers as flex,
no skipped work). Reported: median ms over interleaved rounds and the ratio to dense causal SDPA, and
each pattern's kept fraction of the score matrix. Compilation happens before timing.

    python benchmarks/attention_patterns.py [--seq 512 2048] [--window 128]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from archbench.search_space import attention

RESULTS = Path(__file__).resolve().parent / "results"


def timed(fn, q, k, v, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn(q, k, v)
        out.append((time.perf_counter() - t) * 1e3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq", type=int, nargs="*", default=[512, 2048])
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    attention.set_flex_compile(True)
    device = torch.device(args.device)
    rows = []
    print(f"{'S':>5} {'pattern':24s} {'median ms':>10} {'vs dense':>9} {'kept':>6}")
    for s in args.seq:
        torch.manual_seed(0)
        q, k, v = (torch.randn(2, 4, s, 64, device=device) for _ in range(3))
        sw = attention.SlidingWindow(args.window, True)
        mask = sw.dense_mask(s, device)
        fns = {
            "dense (SDPA causal)": (attention.Dense(0, True), 0.5 + 0.5 / s),
            "SDPA + window mask": (partial(F.scaled_dot_product_attention, attn_mask=mask), None),
            "sliding_window (flex)": (sw, sw.kept_fraction(s)),
            "block_sparse (flex)": (attention.BlockSparse(args.window, True), None),
            "linear": (attention.Linear(0, True), 0.0),
        }
        fns["block_sparse (flex)"] = (fns["block_sparse (flex)"][0], fns["block_sparse (flex)"][0].kept_fraction(s))
        samples: dict[str, list[float]] = {name: [] for name in fns}
        with torch.no_grad():
            for fn, _ in fns.values():  # warm-up and compile, never timed
                for _ in range(3):
                    fn(q, k, v)
            for _ in range(args.rounds):  # interleave so that load changes hit every pattern alike
                for name, (fn, _) in fns.items():
                    samples[name] += timed(fn, q, k, v, 1)
        dense = float(torch.tensor(samples["dense (SDPA causal)"]).median())
        for name, (_, kept) in fns.items():
            med = float(torch.tensor(samples[name]).median())
            rows.append({"seq": s, "pattern": name, "median_ms": med, "ratio_to_dense": med / dense, "kept": kept})
            kept_s = f"{kept:6.3f}" if kept is not None else "   -  "
            print(f"{s:>5} {name:24s} {med:>10.3f} {med / dense:>9.3f} {kept_s}", flush=True)
    out = {
        "benchmark": "attention_patterns",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "device": str(device),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "threads": torch.get_num_threads()},
        "shape": {"batch": 2, "heads": 4, "head_dim": 64, "window": args.window},
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"attention_patterns_{device.type}.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
