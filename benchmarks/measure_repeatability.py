"""Is archbench's latency repeatable, and does it agree with torch.utils.benchmark?

For 12 architectures of different cost, measure each twice in two separate passes (the second in a
different order) with ``archbench.latency.measure_model``, and once with
``torch.utils.benchmark.Timer(..., num_threads=torch.get_num_threads()).blocked_autorange()`` on the same
model and input. Reports per architecture: the within-measurement CV of the samples (``latency_cv``),
the between-pass CV of the two medians, the Kendall tau of the two passes' rankings and the ratio of
archbench's median to Timer's (Timer runs right after each archbench measurement, in both passes, so that
both see the same machine: on a shared CPU the load changes from minute to minute).
Targets (issue 3): median CV <= 3 % on CPU / 1 % on GPU, tau >= 0.9 on CPU / 0.95 on GPU, median ratio
in 0.95..1.05.

    python benchmarks/measure_repeatability.py                 # CPU, writes results/measure_repeatability_cpu.json
    python benchmarks/measure_repeatability.py --device cuda   # GPU, writes results/measure_repeatability_cuda.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.utils.benchmark as tbench
from scipy.stats import kendalltau

from archbench.latency import StopRule, hardware_fingerprint, measure_model
from archbench.search_space import Architecture, build
from archbench.search_space.quantize import quantize

RESULTS = Path(__file__).parent / "results"

# (name, fields, batch, seq): costs from well under a millisecond to tens of milliseconds on a small CPU.
CASES: list[tuple[str, dict[str, Any], int, int]] = [
    ("d1_w64_s32", {"depth": 1, "width": 64, "heads": 2}, 1, 32),
    ("d2_w64_s64", {"depth": 2, "width": 64, "heads": 4}, 1, 64),
    ("d2_w128_s128", {"depth": 2, "width": 128, "heads": 4}, 1, 128),
    ("d4_w128_s128_swiglu_rms", {"depth": 4, "width": 128, "heads": 4, "ffn_act": "swiglu", "norm": "rmsnorm"}, 1, 128),
    ("d4_w128_s256_linear", {"depth": 4, "width": 128, "heads": 4, "attention": "linear"}, 1, 256),
    ("d4_w256_s128", {"depth": 4, "width": 256, "heads": 8}, 1, 128),
    ("d4_w256_s128_int8", {"depth": 4, "width": 256, "heads": 8, "quant": "int8"}, 1, 128),
    ("d4_w256_s256_b2", {"depth": 4, "width": 256, "heads": 8}, 2, 256),
    ("d6_w256_s256_rope", {"depth": 6, "width": 256, "heads": 8, "pos_encoding": "rope"}, 1, 256),
    ("d8_w256_s256_shared", {"depth": 8, "width": 256, "heads": 8, "unique_layers": 2}, 1, 256),
    ("d6_w384_s256", {"depth": 6, "width": 384, "heads": 6}, 2, 256),
    ("d8_w512_s256", {"depth": 8, "width": 512, "heads": 8}, 2, 256),
]
GPU_BATCH = 8  # on a GPU the same shapes run at a larger batch so that they are not all launch-bound


def deployed(fields: dict[str, Any], seq: int, device: str) -> tuple[Architecture, torch.nn.Module]:
    arch = Architecture(**{"max_seq_len": max(seq, 32), "vocab_size": 256, **fields})
    model = build(arch).to(device).eval()
    q = quantize(model, arch.quant, device, copy_model=False)
    if not q.ok or q.model is None:
        raise SystemExit(f"{arch.quant} cannot run on {device}: {q.reason}")
    return arch, q.model


def timer_median_ms(model: torch.nn.Module, x: torch.Tensor, min_run_time: float) -> float:
    """torch.utils.benchmark's median on the same model and input, with torch's own thread count."""

    @torch.inference_mode()
    def forward() -> object:
        return model(x)

    timer = tbench.Timer(stmt="forward()", globals={"forward": forward}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--cv-target", type=float, default=None, help="default 0.02 on cpu, 0.005 on cuda")
    parser.add_argument(
        "--median-ci", type=float, default=None, help="median CI target: default 0.01 on cpu, 0.0025 on cuda; 0: off"
    )
    parser.add_argument("--min-time", type=float, default=None, help="seconds of timing at least (StopRule's)")
    parser.add_argument("--time-cap", type=float, default=8.0, help="seconds of timed repetition at most")
    parser.add_argument("--timer-min-run-time", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--energy", action="store_true", help="also measure energy per inference (GPU)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA GPU here", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device == "cuda"
    median_ci = (0.0025 if cuda else 0.01) if args.median_ci is None else args.median_ci
    cv_target = args.cv_target or (0.005 if cuda else 0.02)
    rule = StopRule(cv_target=cv_target, median_ci=median_ci, time_cap_s=args.time_cap)
    if args.min_time is not None:
        rule = dataclasses.replace(rule, min_time_s=args.min_time)
    out = args.out or RESULTS / f"measure_repeatability_{args.device}.json"

    models = {}
    for name, fields, batch, seq in CASES:
        arch, model = deployed(fields, seq, args.device)
        batch = GPU_BATCH * batch if cuda else batch
        x = torch.randint(0, arch.vocab_size, (batch, seq), generator=torch.Generator().manual_seed(0))
        models[name] = (arch, model, batch, seq, x.to(args.device))

    passes: list[dict[str, dict[str, Any]]] = []
    order = [c[0] for c in CASES]
    started = time.time()
    for p in range(2):
        if p == 1:
            random.Random(1).shuffle(order)  # a different order: drift and neighbours do not line up
        rows: dict[str, dict[str, Any]] = {}
        for name in order:
            arch, model, batch, seq, _ = models[name]
            m = measure_model(
                model, arch=arch, device=args.device, batch=batch, seq_len=seq, rule=rule,
                energy=args.energy and cuda, memory=False,
            )  # fmt: skip
            lat = m.latency
            assert lat is not None
            timer = timer_median_ms(model, models[name][4], args.timer_min_run_time)
            rows[name] = {
                "median_ms": m.metrics["latency_ms"],
                "timer_median_ms": timer,
                "ratio_to_timer": m.metrics["latency_ms"] / timer,
                "host_load_1m": m.hardware["host_load_1m"],
                "p90_ms": m.metrics["latency_p90_ms"],
                "cv": m.metrics["latency_cv"],
                "robust_cv": rule.spread(lat.samples_ms),
                "iqr_ms": m.metrics["latency_iqr_ms"],
                "samples": m.metrics["latency_samples"],
                "stop_reason": lat.stop_reason,
                "energy_mj": m.metrics["energy_mj"],
                "throttled": m.hardware["throttled"],
            }
            print(f"pass {p + 1} {name:28s} {rows[name]['median_ms']:9.3f} ms  cv {rows[name]['cv']:.3f}  "
                  f"n={rows[name]['samples']} ({lat.stop_reason})  timer {timer:9.3f} ms", flush=True)  # fmt: skip
        passes.append(rows)

    names = [c[0] for c in CASES]
    a = [passes[0][n]["median_ms"] for n in names]
    b = [passes[1][n]["median_ms"] for n in names]
    tau = float(kendalltau(a, b).statistic)
    per_arch = []
    for n in names:
        m1, m2 = passes[0][n]["median_ms"], passes[1][n]["median_ms"]
        between = statistics.stdev([m1, m2]) / statistics.fmean([m1, m2])
        per_arch.append({
            "name": n,
            "arch": models[n][0].to_dict(),
            "batch": models[n][2],
            "seq_len": models[n][3],
            "pass1": passes[0][n],
            "pass2": passes[1][n],
            "cv_within": statistics.fmean([passes[0][n]["cv"], passes[1][n]["cv"]]),
            "cv_between_passes": between,
            "timer_median_ms": statistics.fmean([passes[0][n]["timer_median_ms"], passes[1][n]["timer_median_ms"]]),
            "ratio_to_timer": statistics.median([passes[0][n]["ratio_to_timer"], passes[1][n]["ratio_to_timer"]]),
        })  # fmt: skip
    summary = {
        "median_cv_within": statistics.median(r["cv_within"] for r in per_arch),
        "median_robust_cv_within": statistics.median(
            statistics.fmean([r["pass1"]["robust_cv"], r["pass2"]["robust_cv"]]) for r in per_arch
        ),
        "median_cv_between_passes": statistics.median(r["cv_between_passes"] for r in per_arch),
        "kendall_tau": tau,
        "median_ratio_to_timer": statistics.median(r["ratio_to_timer"] for r in per_arch),
        "targets": {"cv": 0.01 if cuda else 0.03, "tau": 0.95 if cuda else 0.9, "ratio": [0.95, 1.05]},
    }
    report = {
        "command": " ".join(["python", *sys.argv]),
        "device": args.device,
        "stop_rule": rule.__dict__,
        "wall_s": time.time() - started,
        "load_average_at_end": list(__import__("os").getloadavg()),
        "hardware": hardware_fingerprint(args.device),
        "summary": summary,
        "archs": per_arch,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")

    print(f"\n{'arch':28s} {'pass1 ms':>9s} {'pass2 ms':>9s} {'cv in':>7s} {'cv between':>10s} "
          f"{'timer ms':>9s} {'ratio':>6s}")  # fmt: skip
    for r in per_arch:
        print(f"{r['name']:28s} {r['pass1']['median_ms']:9.3f} {r['pass2']['median_ms']:9.3f} "
              f"{r['cv_within']:7.3f} {r['cv_between_passes']:10.3f} {r['timer_median_ms']:9.3f} "
              f"{r['ratio_to_timer']:6.3f}")  # fmt: skip
    print(json.dumps(summary, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
