"""How few global layers does recall need, and what does each cost at a long context? (issue 26)

(a) ``recall``: windowed models (``sliding_window``) of one 6-layer shape with a global layer every 1, 2, 3,
6 layers and none, trained at the same budget on the same data and seeds. The task settings and budget are
chosen so that the all-global model solves the task (``val_acc >= 0.9``; the script reports whether it
did): a comparison below that would measure under-training, not the layout. The window is far shorter
than the distance from a query to its answer (at least ``seq - 4 * pairs`` tokens back), so a window
alone cannot reach it.

(b) one 12-layer shape at a long context (8192 on a CPU): decode time per token from a warm cache
(:func:`archbench.latency.decode.measure_decode`, eager) and the cache's size, measured and from the
formula (:mod:`archbench.search_space.cache_size`), for the same layouts. Times are side by side in one
run; quote the ratios to the all-global model.

    nice -n 5 python benchmarks/hybrid_layouts.py --out benchmarks/results/hybrid_layouts_cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch

from archbench import Architecture
from archbench.evaluators import evaluate
from archbench.evaluators.recall import Recall
from archbench.latency.decode import measure_decode
from archbench.latency.stats import StopRule
from archbench.search_space.cache_size import kv_cache_bytes, kv_cache_positions
from archbench.search_space.model import build
from archbench.train_config import TrainConfig

RESULTS = Path(__file__).resolve().parent / "results"
EVERY = [1, 2, 3, 6, 0]  # a global layer every k layers; 0: none (all windowed)


def label(every: int) -> str:
    return f"global every {every}" if every else "no global layer"


def recall_part(args: argparse.Namespace) -> dict[str, Any]:
    task = Recall(
        batch_size=args.batch,
        num_pairs=args.pairs,
        num_keys=args.keys,
        num_values=args.keys,
        num_filler=args.keys,
        val_size=256,
    )
    base = Architecture(
        depth=6, width=args.width, heads=4, ffn_ratio=2.0, norm="rmsnorm", ffn_act="swiglu", pos_encoding="rope",
        attention="sliding_window", window=args.window, vocab_size=task.vocab_size(), max_seq_len=args.seq,
    )  # fmt: skip
    rows = []
    for every in args.every:
        arch = base.replace(global_every=every)
        accs = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            t = time.perf_counter()
            r = evaluate(arch, task, f"steps={args.steps}", seed=seed, device="cpu", measure=False,
                         config=TrainConfig(lr=args.lr))  # fmt: skip
            accs.append(r.metrics["val_acc"])
            print(
                f"{label(every):18s} seed {seed}: val_acc {r.metrics['val_acc']:.3f} ({time.perf_counter() - t:.0f} s)"
            )
        rows.append({"global_every": every, "global_layers": arch.global_layers, "layout": arch.describe(),
                     "val_acc": accs, "val_acc_mean": sum(accs) / len(accs)})  # fmt: skip
    solved = rows[0]["val_acc_mean"] >= 0.9 if args.every[0] == 1 else None  # None: all-global not run
    return {
        "task": {"name": "recall", "seq_len": args.seq, "pairs": args.pairs, "keys": args.keys, "values": args.keys,
                 "filler": args.keys, "chance": 1 / args.keys, "answer_at_least_back": args.seq - 4 * args.pairs},
        "budget": f"steps={args.steps}", "batch": args.batch, "lr": args.lr, "seeds": args.seeds,
        "first_seed": args.first_seed,
        "window": args.window, "shape": base.describe(), "all_global_solves": solved, "rows": rows,
    }  # fmt: skip


def decode_part(args: argparse.Namespace) -> dict[str, Any]:
    base = Architecture(
        depth=12, width=args.decode_width, heads=8, kv_heads=2, ffn_ratio=2.75, ffn_act="swiglu", norm="rmsnorm",
        pos_encoding="rope", bias=False, attention="sliding_window", window=args.decode_window, vocab_size=256,
        max_seq_len=args.context + 8,
    )  # fmt: skip
    rule = StopRule(min_samples=args.samples, max_samples=args.samples, time_cap_s=60.0)
    rows = []
    torch.manual_seed(0)
    for every in [1, 2, 3, 6, 12, 0]:
        arch = base.replace(global_every=every)
        model = build(arch).eval()
        m = measure_decode(model, arch, "cpu", batch=1, context=args.context, rule=rule, memory=False, warmup_calls=2)
        measured = m.metrics["kv_cache_mb"]
        rows.append({
            "global_every": arch.global_every, "global_last": arch.global_last, "global_layers": arch.global_layers,
            "layout": arch.describe(), "decode_ms_per_token": m.metrics["decode_ms_per_token"],
            "decode_cv": m.metrics.get("decode_cv"), "kv_cache_mb": measured,
            "kv_cache_mb_formula": kv_cache_bytes(arch, args.context) / 2**20,
            "kv_cache_positions": kv_cache_positions(arch, args.context),
        })  # fmt: skip
        print(
            f"{arch.global_layers:2d} global: {m.metrics['decode_ms_per_token']:.2f} ms/token, cache {measured:.1f} MiB"
        )
    # The all-global model again, last: how far the machine drifted while the others ran.
    again = measure_decode(build(base.replace(global_every=1)).eval(), base.replace(global_every=1), "cpu", batch=1,
                           context=args.context, rule=rule, memory=False, warmup_calls=2)  # fmt: skip
    rows[0]["decode_ms_per_token_again_last"] = again.metrics["decode_ms_per_token"]
    ref = rows[0]
    for r in rows:
        r["decode_vs_all_global"] = r["decode_ms_per_token"] / ref["decode_ms_per_token"]
        r["cache_vs_all_global"] = r["kv_cache_mb"] / ref["kv_cache_mb"]
    return {"context": args.context, "shape": base.describe(), "window": args.decode_window, "rows": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=["recall", "decode", "both"], default="both")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    p.add_argument("--every", type=int, nargs="+", default=EVERY, help="(a) the layouts: a global layer every k")
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--pairs", type=int, default=4)
    p.add_argument("--keys", type=int, default=16, help="keys = values = filler tokens (chance = 1/keys)")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--window", type=int, default=8)
    p.add_argument("--context", type=int, default=8192)
    p.add_argument("--decode-width", type=int, default=128)
    p.add_argument("--decode-window", type=int, default=512)
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=RESULTS / "hybrid_layouts_cpu.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out: dict[str, Any] = {
        "command": "python benchmarks/hybrid_layouts.py " + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items() if k != "out"),
        "machine": {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
                    "threads": args.threads},
    }  # fmt: skip
    if args.part in ("recall", "both"):
        out["recall"] = recall_part(args)
    if args.part in ("decode", "both"):
        out["decode"] = decode_part(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
