"""Does the wsd schedule a continued funnel trains under give models as good as the default cosine one?

For ``--n`` architectures sampled from ``--space`` (seeded), trains each on ``charlm`` for ``--budget``
under the default TrainConfig (cosine, warm-up over 10% of the budget) and under ``wsd`` with each
warm-up in ``--warmups`` (steps), on one CPU thread, and reports val_loss side by side (training is
deterministic on CPU, so the numbers do not depend on the machine's load). Prints a table and writes
JSON under ``benchmarks/results/``.

    python benchmarks/schedule_check.py                      # 4 lm_tiny shapes, steps=360, wsd warm-ups 4 and 32
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from archbench import SearchSpace
from archbench.evaluators import evaluate
from archbench.train_config import TrainConfig

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--space", default="lm_tiny")
    parser.add_argument("--budget", default="steps=360")
    parser.add_argument("--warmups", default="4,32", help="wsd warm-up steps to try (default 4,32)")
    parser.add_argument("--out", default=str(RESULTS / "schedule_check_cpu.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.time()
    configs = {"cosine": TrainConfig()}
    configs.update({f"wsd{w}": TrainConfig(schedule="wsd", warmup_steps=int(w)) for w in args.warmups.split(",")})
    rows = []
    for arch in SearchSpace.builtin(args.space).sample(args.n, seed=args.seed):
        row: dict[str, object] = {"arch_id": arch.arch_id, "arch": arch.describe()}
        for name, config in configs.items():
            r = evaluate(arch, "charlm", args.budget, measure=False, config=config)
            row[name] = r.metrics["val_loss"] if r.status == "ok" else None
            row[f"{name}_label"] = config.label()
        rows.append(row)
        print(json.dumps(row), flush=True)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"val_loss at {args.budget} on charlm ({args.n} {args.space} shapes)")
    table.add_column("architecture")
    for name in configs:
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(str(row["arch"])[:48], *[f"{row[n]:.4f}" if row[n] is not None else "-" for n in configs])
    Console().print(table)
    summary = {}
    for name in configs:
        if name == "cosine":
            continue
        diffs = [r[name] / r["cosine"] - 1 for r in rows if r[name] is not None and r["cosine"] is not None]
        summary[name] = {"median_rel_diff_vs_cosine": float(np.median(diffs)), "worst": float(max(diffs)),
                         "better_in": sum(d < 0 for d in diffs), "of": len(diffs)}  # fmt: skip
        s = summary[name]
        print(f"{name} vs cosine: median {s['median_rel_diff_vs_cosine']:+.1%}, worst {s['worst']:+.1%}, "
              f"lower val_loss in {s['better_in']} of {len(diffs)}")  # fmt: skip
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    out = {"benchmark": "schedule_check", "command": command, "settings": vars(args), "rows": rows,
           "summary": summary, "total_s": time.time() - started}  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
