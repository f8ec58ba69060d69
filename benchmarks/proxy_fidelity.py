"""How far can the short training budget be trusted? Rank agreement of short vs long training.

Samples ``--n`` architectures from the ``lm_tiny`` space (quant modes this device cannot run left
out), trains each with the default short budget and with ``--factor`` times that budget, and reports
the Spearman rank correlation of their validation losses (target: >= 0.8). With ``--noise-ceiling``
the long budget is also trained with a second seed: the rank correlation of the long budget with itself
under another seed is the most any proxy can show against one long run (training noise alone).
Prints a table and writes JSON to ``benchmarks/results/``.

    python benchmarks/proxy_fidelity.py                      # 12 archs, default budget vs 4x, charlm
    python benchmarks/proxy_fidelity.py --n 16 --budget steps=300 --task charlm
    python benchmarks/proxy_fidelity.py --noise-ceiling --lr 6e-3   # seed-to-seed ceiling, another peak lr
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from archbench import SearchSpace
from archbench.evaluators import DEFAULT_BUDGET, Budget, TrainConfig, evaluate, resolve_device
from archbench.evaluators.measurement import fingerprint
from archbench.search_space.quantize import supported_quants

RESULTS = Path(__file__).resolve().parent / "results"
TARGET = 0.8


def ranks(values: list[float]) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank."""
    a = np.asarray(values, dtype=float)
    order = a.argsort(kind="stable")
    r = np.empty(len(a))
    r[order] = np.arange(1, len(a) + 1)
    for v in np.unique(a):
        tie = a == v
        r[tie] = r[tie].mean()
    return r


def spearman(x: list[float], y: list[float]) -> float | None:
    """Spearman's rank correlation (Pearson correlation of the ranks); None below 3 pairs."""
    if len(x) < 3:
        return None
    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=12, help="architectures (default 12)")
    parser.add_argument("--seed", type=int, default=0, help="sampling and training seed (default 0)")
    parser.add_argument("--space", default="lm_tiny", help="built-in search space (default lm_tiny)")
    parser.add_argument("--task", default="charlm", help="task (default charlm)")
    parser.add_argument("--budget", default=str(DEFAULT_BUDGET), help=f"short budget (default {DEFAULT_BUDGET})")
    parser.add_argument("--factor", type=float, default=4.0, help="long budget = factor x short (default 4)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default 1: robust on a shared machine)"
    )
    parser.add_argument("--lr", type=float, default=TrainConfig.lr, help=f"peak learning rate ({TrainConfig.lr})")
    parser.add_argument("--noise-ceiling", action="store_true", help="also train the long budget with seed + 1")
    parser.add_argument("--out", default=None, help="JSON path (default results/proxy_fidelity_<device>.json)")
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    short = Budget.parse(args.budget)
    long = short.scaled(args.factor)
    space = SearchSpace.builtin(args.space).for_device(supported_quants(device))
    archs = space.sample(args.n, seed=args.seed)
    config = TrainConfig(lr=args.lr)
    console = Console()
    console.print(f"proxy fidelity: {args.n} archs from {space.name}, task {args.task}, {short} vs {long} on {device}")

    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for i, arch in enumerate(archs):
        row: dict[str, Any] = {"arch_id": arch.arch_id, "describe": arch.describe(), "arch": arch.to_dict()}
        runs = [("short", short, args.seed), ("long", long, args.seed)]
        if args.noise_ceiling:
            runs.append(("long_seed2", long, args.seed + 1))
        for label, budget, seed in runs:
            r = evaluate(arch, args.task, budget, seed=seed, device=device, measure=False, config=config)
            row[label] = {
                "status": r.status,
                "reason": r.reason,
                "val_loss": r.metric("val_loss"),
                "val_loss_quant": r.metric("val_loss_quant"),
                "train_time_s": r.metric("train_time_s"),
                "train_tokens_per_s": r.metric("train_tokens_per_s"),
            }
        rows.append(row)
        s, lg = row["short"], row["long"]
        console.print(
            f"[{i + 1}/{len(archs)}] {arch.arch_id} {arch.describe()}: short {s['status']} {s['val_loss']}, "
            f"long {lg['status']} {lg['val_loss']} ({time.perf_counter() - t0:.0f} s)"
        )

    def pairs(metric: str, a: str = "short", b: str = "long") -> tuple[list[float], list[float]]:
        both = [(r[a][metric], r[b][metric]) for r in rows if r[a]["status"] == "ok" and r[b]["status"] == "ok"]
        both = [(a, b) for a, b in both if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)]
        return [a for a, _ in both], [b for _, b in both]

    xs, ys = pairs("val_loss")
    rho = spearman(xs, ys)
    xq, yq = pairs("val_loss_quant")
    rho_q = spearman(xq, yq)
    ceiling = spearman(*pairs("val_loss", "long", "long_seed2")) if args.noise_ceiling else None
    elapsed = time.perf_counter() - t0

    table = Table(title=f"proxy fidelity on {args.task}: val_loss after {short} vs {long} ({device})")
    for col in ("#", "arch_id", "architecture", "short", "long", "short rank", "long rank"):
        table.add_column(col)
    ok_ids = [r["arch_id"] for r in rows if r["short"]["status"] == "ok" and r["long"]["status"] == "ok"]
    rank_s = dict(zip(ok_ids, ranks(xs), strict=True)) if xs else {}
    rank_l = dict(zip(ok_ids, ranks(ys), strict=True)) if ys else {}

    def cell(d: dict[str, Any]) -> str:
        return f"{d['val_loss']:.4f}" if d["status"] == "ok" else f"{d['status']}"

    for i, r in enumerate(rows):
        table.add_row(
            str(i + 1),
            r["arch_id"],
            r["describe"],
            cell(r["short"]),
            cell(r["long"]),
            f"{rank_s[r['arch_id']]:g}" if r["arch_id"] in rank_s else "-",
            f"{rank_l[r['arch_id']]:g}" if r["arch_id"] in rank_l else "-",
        )
    console.print(table)
    verdict = "n/a" if rho is None else ("meets" if rho >= TARGET else "BELOW")
    console.print(
        f"Spearman rho(val_loss) = {rho if rho is None else round(rho, 3)} over {len(xs)} archs "
        f"({verdict} target {TARGET}); rho(val_loss_quant) = {rho_q if rho_q is None else round(rho_q, 3)}; "
        f"{elapsed:.0f} s"
    )
    if args.noise_ceiling:
        console.print(f"noise ceiling: rho(val_loss, {long} seed {args.seed} vs seed {args.seed + 1}) = {ceiling}")

    out = Path(args.out) if args.out else RESULTS / f"proxy_fidelity_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": "proxy_fidelity",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])]),
        "space": space.name,
        "task": args.task,
        "n": args.n,
        "seed": args.seed,
        "short_budget": str(short),
        "long_budget": str(long),
        "device": str(device),
        "spearman_val_loss": rho,
        "spearman_val_loss_quant": rho_q,
        "lr": args.lr,
        "noise_ceiling_long_vs_long_other_seed": ceiling,
        "n_compared": len(xs),
        "target": TARGET,
        "meets_target": None if rho is None else rho >= TARGET,
        "elapsed_s": elapsed,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "hardware": fingerprint(device),
        "results": rows,
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
