"""GPU energy check (issue 3): is energy per inference repeatable, and do NVML's total-energy counter and
the integrated power samples agree?

For a few architectures of different cost, measure energy per inference twice (separate passes, windows of
``--window`` seconds each after an idle-power reading) and report: energy per inference in each pass and
their relative difference (target <= 3 %), the counter's energy against the trapezoid integral of the power
samples over the same window (target within 10 %), idle and average power, clocks and throttling.

    python benchmarks/measure_energy_check.py --device cuda    # writes results/measure_energy_check_cuda.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from archbench.latency import StopRule, hardware_fingerprint, measure_model
from archbench.search_space import Architecture, build
from archbench.search_space.quantize import quantize

RESULTS = Path(__file__).parent / "results"
CASES: list[tuple[str, dict[str, Any], int, int]] = [
    ("d4_w256_bf16_b8", {"depth": 4, "width": 256, "heads": 8, "quant": "bf16"}, 8, 256),
    ("d8_w512_bf16_b16", {"depth": 8, "width": 512, "heads": 8, "quant": "bf16"}, 16, 512),
    ("d12_w768_bf16_b16", {"depth": 12, "width": 768, "heads": 12, "quant": "bf16"}, 16, 1024),
    ("d12_w768_fp32_b16", {"depth": 12, "width": 768, "heads": 12}, 16, 1024),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cuda",), default="cuda")
    parser.add_argument("--window", type=float, default=5.0, help="seconds of each energy window (default 5)")
    parser.add_argument("--idle", type=float, default=2.0, help="seconds of idle-power reading (default 2)")
    parser.add_argument("--out", type=Path, default=RESULTS / "measure_energy_check_cuda.json")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("measure_energy_check needs a CUDA GPU with NVML; none here", file=sys.stderr)
        return 2
    rows = []
    started = time.time()
    for name, fields, batch, seq in CASES:
        arch = Architecture(**{"max_seq_len": seq, "vocab_size": 256, **fields})
        model = quantize(build(arch).cuda().eval(), arch.quant, "cuda", copy_model=False).model
        passes = []
        for _ in range(2):
            m = measure_model(
                model, arch=arch, device="cuda", batch=batch, seq_len=seq, rule=StopRule(time_cap_s=3),
                energy_window_s=args.window, idle_s=args.idle, memory=False,
            )  # fmt: skip
            w = m.energy
            passes.append({
                "energy_mj": m.metrics["energy_mj"],
                "energy_above_idle_mj": m.metrics["energy_above_idle_mj"],
                "avg_power_w": m.metrics["avg_power_w"],
                "latency_ms": m.metrics["latency_ms"],
                "null_reasons": dict(m.null_reasons),
                "energy_source": None if w is None else w.energy_source,
                "window_s": None if w is None else w.duration_s,
                "counter_j": None if w is None else w.energy_j,
                "sampled_j": None if w is None else w.sampled_energy_j,
                "power_samples": None if w is None else w.power_samples,
                "throttle_reasons": m.hardware["throttle_reasons"],
                "throttled": m.hardware["throttled"],
                "sm_clock_mhz": [m.hardware["sm_clock_mhz_min"], m.hardware["sm_clock_mhz_max"]],
            })  # fmt: skip
        e = [p["energy_mj"] for p in passes]
        pass_diff = abs(e[0] - e[1]) / statistics.fmean(e) if None not in e else None
        agree = [
            abs(p["counter_j"] - p["sampled_j"]) / p["counter_j"]
            for p in passes
            if p["counter_j"] and p["sampled_j"] and p["energy_source"] == "counter"
        ]
        rows.append({
            "name": name, "arch": arch.to_dict(), "batch": batch, "seq_len": seq, "passes": passes,
            "energy_pass_rel_diff": pass_diff, "counter_vs_samples_rel_diff": max(agree) if agree else None,
        })  # fmt: skip
        agreement = rows[-1]["counter_vs_samples_rel_diff"]
        print(f"{name:22s} energy/inference {e} mJ  pass diff {pass_diff}  counter vs samples {agreement}")
    diffs = [r["energy_pass_rel_diff"] for r in rows if r["energy_pass_rel_diff"] is not None]
    agrees = [r["counter_vs_samples_rel_diff"] for r in rows if r["counter_vs_samples_rel_diff"] is not None]
    report = {
        "command": " ".join(["python", *sys.argv]),
        "wall_s": time.time() - started,
        "hardware": hardware_fingerprint("cuda"),
        "summary": {
            "max_energy_pass_rel_diff": max(diffs) if diffs else None,
            "max_counter_vs_samples_rel_diff": max(agrees) if agrees else None,
            "targets": {"energy_pass_rel_diff": 0.03, "counter_vs_samples_rel_diff": 0.10},
        },
        "archs": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(json.dumps(report["summary"], indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
