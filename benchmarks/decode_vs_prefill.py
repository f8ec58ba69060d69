"""Do prefill and decode rank architectures the same way? And what does torch.compile buy each?

For 12 architectures of the ``lm_small`` space (chosen to span depth vs width, grouped-query attention,
every attention pattern, weight sharing and residual types), measure on one device:

* prefill latency: one forward over ``batch x prompt`` tokens (``measure_model``);
* decode latency per token: one step from a warm KV cache of ``context`` tokens (``measure_decode``);
* the KV cache's size at that context;

each in eager and in compiled (``torch.compile``) execution, with the compile time. Reported: Spearman's
rho and Kendall's tau between the prefill and the decode rankings, the fraction of architecture pairs
that the two order differently (how often a user measuring only the forward pass picks the model that
decodes slower), and the compile speed-up of each mode per architecture.

    python benchmarks/decode_vs_prefill.py                 # CPU: writes results/decode_vs_prefill_cpu.json
    python benchmarks/decode_vs_prefill.py --device cuda   # GPU: results/decode_vs_prefill_cuda.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from scipy.stats import kendalltau, spearmanr

from archbench.latency import StopRule, hardware_fingerprint, measure_model
from archbench.latency.decode import measure_decode
from archbench.search_space import Architecture, SearchSpace, build
from archbench.search_space.quantize import quantize

RESULTS = Path(__file__).parent / "results"
SPACE = "lm_small"

# name -> fields over lm_small's choices (max_seq_len 512, vocab 256). Pairs at similar parameter counts
# differ in one thing that prefill and decode weigh differently: depth vs width, KV heads, pattern.
CASES: dict[str, dict[str, Any]] = {
    "deep_narrow_d12_w128": {"depth": 12, "width": 128, "heads": 4},
    "shallow_wide_d2_w384": {"depth": 2, "width": 384, "heads": 8},
    "mid_d6_w256": {"depth": 6, "width": 256, "heads": 8},
    "mid_d6_w256_mqa": {"depth": 6, "width": 256, "heads": 8, "kv_heads": 1},
    "mid_d6_w256_gqa2_swiglu": {
        "depth": 6,
        "width": 256,
        "heads": 8,
        "kv_heads": 2,
        "ffn_act": "swiglu",
        "norm": "rmsnorm",
        "pos_encoding": "rope",
    },
    "mid_d6_w256_window64": {"depth": 6, "width": 256, "heads": 8, "attention": "sliding_window", "window": 64},
    "mid_d6_w256_blocks128": {"depth": 6, "width": 256, "heads": 8, "attention": "block_sparse", "window": 128},
    "mid_d6_w256_linear": {"depth": 6, "width": 256, "heads": 8, "attention": "linear"},
    "d8_w192_value_residual": {"depth": 8, "width": 192, "heads": 4, "residual": "value_residual"},
    "d8_w192_denseformer": {"depth": 8, "width": 192, "heads": 4, "residual": "denseformer"},
    "d8_w256_shared2": {"depth": 8, "width": 256, "heads": 8, "unique_layers": 2},
    "d4_w512_gqa2": {"depth": 4, "width": 512, "heads": 8, "kv_heads": 2, "ffn_ratio": 2.0},
}


def arch_of(fields: dict[str, Any]) -> Architecture:
    arch = Architecture(**{"vocab_size": 256, "max_seq_len": 512, **fields})
    space = SearchSpace.builtin(SPACE)
    if not space.contains(arch):
        raise SystemExit(f"case {fields} is not in space {SPACE}")
    return arch


def deployed(arch: Architecture, device: str) -> torch.nn.Module:
    model = build(arch).to(device).eval()
    q = quantize(model, arch.quant, device, copy_model=False)
    if not q.ok or q.model is None:
        raise SystemExit(f"{arch.describe()}: {q.reason}")
    return q.model


def measure_case(arch: Architecture, args: argparse.Namespace, rule: StopRule) -> dict[str, Any]:
    row: dict[str, Any] = {"arch_id": arch.arch_id, "describe": arch.describe()}
    for exec_mode in ("eager", "compile"):
        torch._dynamo.reset()  # each architecture compiles from scratch: compile_s is its own
        model = deployed(arch, args.device)
        pre = measure_model(
            model, arch, args.device, batch=args.batch, seq_len=args.prompt, rule=rule, energy=False,
            memory=False, compile=exec_mode == "compile",
        )  # fmt: skip
        dec = measure_decode(
            model, arch, args.device, batch=args.batch, context=args.context, exec_mode=exec_mode, rule=rule,
            memory=False,
        )  # fmt: skip
        row[f"prefill_ms_{exec_mode}"] = pre.metrics["prefill_ms"]
        row[f"decode_ms_{exec_mode}"] = dec.metrics["decode_ms_per_token"]
        row[f"decode_cv_{exec_mode}"] = dec.metrics["decode_cv"]
        row[f"prefill_cv_{exec_mode}"] = pre.metrics["latency_cv"]
        if exec_mode == "compile":
            row["compile_s_prefill"] = pre.metrics["compile_s"]
            row["compile_s_decode"] = dec.metrics["compile_s"]
        row["kv_cache_mb"] = dec.metrics["kv_cache_mb"]
        row["params"] = pre.metrics["params"]
    for mode in ("prefill", "decode"):
        eager, compiled = row[f"{mode}_ms_eager"], row[f"{mode}_ms_compile"]
        row[f"compile_speedup_{mode}"] = eager / compiled if eager and compiled else None
    return row


def discordant_fraction(a: list[float], b: list[float]) -> float:
    """Fraction of pairs that ``a`` and ``b`` order differently (ties in either count as agreeing)."""
    pairs = list(itertools.combinations(range(len(a)), 2))
    return sum((a[i] - a[j]) * (b[i] - b[j]) < 0 for i, j in pairs) / len(pairs)


def rank_agreement(rows: list[dict[str, Any]], exec_mode: str) -> dict[str, Any]:
    pre = [r[f"prefill_ms_{exec_mode}"] for r in rows]
    dec = [r[f"decode_ms_{exec_mode}"] for r in rows]
    best_pre = min(range(len(rows)), key=pre.__getitem__)
    best_dec = min(range(len(rows)), key=dec.__getitem__)
    return {
        "spearman_rho": float(spearmanr(pre, dec).statistic),
        "kendall_tau": float(kendalltau(pre, dec).statistic),
        "discordant_pair_fraction": discordant_fraction(pre, dec),
        "fastest_prefill": rows[best_pre]["describe"],
        "fastest_decode": rows[best_dec]["describe"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--batch", type=int, default=None, help="default: 1 on cpu, 8 on cuda")
    parser.add_argument("--prompt", type=int, default=512, help="prefill length (default 512 = max_seq_len)")
    parser.add_argument("--context", type=int, default=448, help="decode: cached tokens (default 448)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on cpu (default 1: quiet timings)")
    parser.add_argument("--time-cap", type=float, default=3.0, help="seconds of timed repetition per number")
    parser.add_argument("--only", nargs="*", default=None, help="case names to run (default all)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA GPU here", file=sys.stderr)
        return 2
    args.batch = args.batch or (8 if args.device == "cuda" else 1)
    torch.set_num_threads(args.threads)
    rule = StopRule(cv_target=0.02, time_cap_s=args.time_cap)
    cases = {k: v for k, v in CASES.items() if args.only is None or k in args.only}
    rows = []
    started = time.time()
    print(f"{'case':28} {'params':>9} {'prefill ms':>11} {'decode ms':>10} {'kv MiB':>7} {'cmp pre':>8} {'cmp dec':>8}")
    for name, fields in cases.items():
        row = {"case": name, **measure_case(arch_of(fields), args, rule)}
        rows.append(row)
        print(
            f"{name:28} {row['params']:>9,} {row['prefill_ms_eager']:>11.3f} {row['decode_ms_eager']:>10.3f} "
            f"{row['kv_cache_mb']:>7.2f} {row['compile_speedup_prefill'] or float('nan'):>8.2f} "
            f"{row['compile_speedup_decode'] or float('nan'):>8.2f}",
            flush=True,
        )
    agreement = {mode: rank_agreement(rows, mode) for mode in ("eager", "compile")}
    for mode, a in agreement.items():
        print(
            f"{mode}: prefill vs decode ranking rho={a['spearman_rho']:.2f} tau={a['kendall_tau']:.2f}; "
            f"{a['discordant_pair_fraction']:.0%} of pairs ordered differently; fastest prefill "
            f"{a['fastest_prefill']!r}, fastest decode {a['fastest_decode']!r}"
        )
    speedups = {
        mode: statistics.median(r[f"compile_speedup_{mode}"] for r in rows if r[f"compile_speedup_{mode}"])
        for mode in ("prefill", "decode")
    }
    print(f"median compile speed-up: prefill {speedups['prefill']:.2f}x, decode {speedups['decode']:.2f}x")
    out = Path(args.out) if args.out else RESULTS / f"decode_vs_prefill_{args.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "command": "python " + " ".join(sys.argv),
        "device": args.device,
        "batch": args.batch,
        "prompt": args.prompt,
        "context": args.context,
        "threads": torch.get_num_threads(),
        "hardware": hardware_fingerprint(torch.device(args.device)),
        "wall_s": round(time.time() - started, 1),
        "rank_agreement": agreement,
        "median_compile_speedup": speedups,
        "rows": rows,
    }
    out.write_text(json.dumps(record, indent=2, default=str))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
