"""How far is a funnel's quick look at latency from a full measurement, and what does it save?

For ``--n`` architectures sampled from ``--space`` (default lm_tiny, deployed as the search deploys
them: quantized, prefill at ``max_seq_len``, batch 1, one torch thread), take three measurements in a
shuffled order: two full ones (:data:`archbench.evaluators.measurement.FULL`) and one quick look
(:data:`~archbench.evaluators.measurement.SCREEN`, what rung 0 of ``search.fidelity=halving`` takes).
Each is the whole ``measure`` call a trial makes (first call, timing, memory, static costs).

Reports the quick look's relative error against the first full measurement next to the second full
measurement's (the noise floor of the machine: a quick look cannot be closer than a repeat), the
Kendall tau of each ranking against the first full one, and the seconds each kind of measurement took.
Ratios from one run, side by side.

    python benchmarks/screen_error.py                      # writes results/screen_error_cpu.json
    python benchmarks/screen_error.py --device cuda --n 16
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from scipy.stats import kendalltau

from archbench import SearchSpace
from archbench.evaluators import measurement
from archbench.evaluators.task import get_task
from archbench.latency import hardware_fingerprint
from archbench.search_space.quantize import quantize

RESULTS = Path(__file__).resolve().parent / "results"


def one(model: torch.nn.Module, arch: Any, device: torch.device, effort: measurement.Effort) -> dict[str, Any]:
    start = time.perf_counter()
    m = measurement.measure(model, arch, device, True, effort=effort)
    return {
        "effort": effort.name,
        "seconds": time.perf_counter() - start,
        "latency_ms": m.metrics.get("latency_ms"),
        "samples": m.metrics.get("latency_samples"),
        "stop_reason": m.hardware.get("latency_stop_reason"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=12, help="architectures (default 12)")
    parser.add_argument("--space", default="lm_tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="default: results/screen_error_<device>.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    task = get_task("charlm")
    space = SearchSpace.builtin(args.space)
    archs = [a for a in space.sample(4 * args.n, seed=args.seed) if quantize_ok(a, device)][: args.n]
    rng = random.Random(args.seed)
    rows = []
    started = time.time()
    for i, arch in enumerate(archs):
        model = quantize(task.build(arch).to(device).eval(), arch.quant, device, copy_model=False).model
        order = [measurement.FULL, measurement.FULL, measurement.SCREEN]
        rng.shuffle(order)
        got = [one(model, arch, device, e) for e in order]
        full = [g for g in got if g["effort"] == "full"]
        quick = next(g for g in got if g["effort"] == "screen")
        rows.append({"arch": arch.describe(), "arch_id": arch.arch_id, "order": [g["effort"] for g in got],
                     "full_a": full[0], "full_b": full[1], "screen": quick})  # fmt: skip
        print(f"{i + 1:2d}/{len(archs)} {arch.describe()[:60]:60s} full {full[0]['latency_ms']:.3f} / "
              f"{full[1]['latency_ms']:.3f} ms, quick {quick['latency_ms']:.3f} ms", flush=True)  # fmt: skip

    def err(key: str) -> list[float]:
        return [r[key]["latency_ms"] / r["full_a"]["latency_ms"] - 1 for r in rows]

    def tau(key: str) -> float:
        return float(kendalltau([r["full_a"]["latency_ms"] for r in rows], [r[key]["latency_ms"] for r in rows])[0])

    def secs(key: str) -> float:
        return statistics.median(r[key]["seconds"] for r in rows)

    quick_err, repeat_err = err("screen"), err("full_b")
    full_s = statistics.median([r[k]["seconds"] for r in rows for k in ("full_a", "full_b")])
    summary = {
        "n": len(rows),
        "quick_median_abs_error": statistics.median(abs(e) for e in quick_err),
        "repeat_median_abs_error": statistics.median(abs(e) for e in repeat_err),
        "quick_max_abs_error": max(abs(e) for e in quick_err),
        "repeat_max_abs_error": max(abs(e) for e in repeat_err),
        "quick_tau_vs_full": tau("screen"),
        "repeat_tau_vs_full": tau("full_b"),
        "quick_median_s": secs("screen"),
        "full_median_s": full_s,
        "quick_over_full_time": secs("screen") / full_s,
    }
    out = {
        "benchmark": "screen_error",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "settings": vars(args),
        "screen_rule": dict(measurement.SCREEN.rule),
        "hardware": hardware_fingerprint(device),
        "machine": {"platform": platform.platform()},
        "summary": summary,
        "rows": rows,
        "total_s": time.time() - started,
    }
    path = Path(args.out) if args.out else RESULTS / f"screen_error_{device.type}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=str))
    report(summary)
    print(f"wrote {path}")
    return 0


def quantize_ok(arch: Any, device: torch.device) -> bool:
    from archbench.search_space.quantize import unsupported_reason

    return unsupported_reason(arch.quant, device) is None


def report(s: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"quick look vs full measurement, {s['n']} architectures")
    for col in ("", "quick look", "second full"):
        table.add_column(col, justify="right")
    table.add_row("median |error| vs first full", f"{s['quick_median_abs_error']:.1%}",
                  f"{s['repeat_median_abs_error']:.1%}")  # fmt: skip
    table.add_row("largest |error|", f"{s['quick_max_abs_error']:.1%}", f"{s['repeat_max_abs_error']:.1%}")
    table.add_row("Kendall tau vs first full", f"{s['quick_tau_vs_full']:.2f}", f"{s['repeat_tau_vs_full']:.2f}")
    table.add_row("median seconds per measurement", f"{s['quick_median_s']:.2f}", f"{s['full_median_s']:.2f}")
    Console().print(table)
    print(f"a quick look takes {s['quick_over_full_time']:.2f}x the time of a full measurement (median seconds)")


if __name__ == "__main__":
    raise SystemExit(main())
