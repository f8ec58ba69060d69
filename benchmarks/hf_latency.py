"""Engine view: does archbench's own module cost what the transformers model of its exported config costs?

A search ranks shapes by archbench's module; users then serve the exported model with transformers (or an
engine built on its configs). For exportable shapes of every family (Llama with multi-head, grouped and
multi-query attention, Mistral's window, GPT-2 tied and untied, Starcoder2 dense and windowed), build
archbench's model with random weights, map the same weights into the transformers model of its exported
config (``archbench.interop``), check the logits agree, then time on one device, dtype and thread count:

* prefill: one forward over ``batch x prompt`` tokens (transformers with ``use_cache=False``, as archbench's
  forward builds no cache);
* decode: one step of one token from a warm cache of ``prompt`` tokens (archbench's ``decode`` from its
  KVCache; transformers from its default ``DynamicCache``, whose layers are pointed back at the warm
  tensors after each step, so every timed step starts from the same cache, as archbench's step leaves its
  cache unchanged; neither copies the cache).

Timing: both warmed up (archbench's ``warm_up``), then timed call by call in alternating order on the
device's own clock, until archbench's :class:`StopRule` finds the median of the per-pair ratios precise (or
a time cap): on a shared machine a slow moment falls on both sides of a pair. The ratio is transformers /
archbench, the median of the per-pair ratios: target 0.8-1.25.

    python benchmarks/hf_latency.py                  # CPU, 1 thread: writes results/hf_latency_cpu.json
    python benchmarks/hf_latency.py --device cuda    # GPU: results/hf_latency_cuda.json
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

from archbench.interop.hf import hf_target
from archbench.interop.hf_model import hf_model
from archbench.interop.weights import Weights
from archbench.latency import StopRule, hardware_fingerprint
from archbench.latency.stats import quantile
from archbench.latency.timing import warm_up
from archbench.search_space import Architecture, build

RESULTS = Path(__file__).parent / "results"
BASE = {"vocab_size": 512, "max_seq_len": 512}
LLAMA = {"ffn_act": "swiglu", "norm": "rmsnorm", "pos_encoding": "rope", "bias": False, "tie_embeddings": False}
CASES: dict[str, dict[str, Any]] = {
    "llama_d4_w256_mha": {**LLAMA, "depth": 4, "width": 256, "heads": 8, "ffn_ratio": 2.75},
    "llama_d4_w256_gqa2": {**LLAMA, "depth": 4, "width": 256, "heads": 8, "kv_heads": 2, "ffn_ratio": 2.75},
    "llama_d2_w512_mqa": {**LLAMA, "depth": 2, "width": 512, "heads": 8, "kv_heads": 1, "ffn_ratio": 2.75},
    "llama_d8_w128_gqa2_bias_tied": {
        **LLAMA, "depth": 8, "width": 128, "heads": 4, "kv_heads": 2, "ffn_ratio": 2.75, "bias": True,
        "tie_embeddings": True,
    },
    "mistral_d4_w256_gqa2_window64": {
        **LLAMA, "depth": 4, "width": 256, "heads": 8, "kv_heads": 2, "ffn_ratio": 2.75,
        "attention": "sliding_window", "window": 64,
    },
    "gpt2_d4_w256": {"depth": 4, "width": 256, "heads": 8},
    "gpt2_d6_w384_untied": {"depth": 6, "width": 384, "heads": 6, "tie_embeddings": False},
    "starcoder2_d4_w256_gqa2": {"depth": 4, "width": 256, "heads": 8, "kv_heads": 2, "pos_encoding": "rope"},
    "starcoder2_d4_w256_gqa2_window64": {
        "depth": 4, "width": 256, "heads": 8, "kv_heads": 2, "pos_encoding": "rope", "attention": "sliding_window",
        "window": 64,
    },
}  # fmt: skip


def models(arch: Architecture, device: str, dtype: torch.dtype) -> tuple[torch.nn.Module, Any]:
    """archbench's model with random weights and the transformers model holding the same weights."""
    torch.manual_seed(0)
    ours = build(arch).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(0.02 * torch.randn_like(p))
    theirs = hf_model(Weights(arch, None, dict(ours.state_dict()), {}))
    return ours.to(device, dtype), theirs.to(device, dtype)


def agree(ours: torch.nn.Module, theirs: Any, idx: torch.Tensor) -> float:
    with torch.inference_mode():
        return (ours(idx).float() - theirs(input_ids=idx, use_cache=False).logits.float()).abs().max().item()


def callables(ours: Any, theirs: Any, prompt: torch.Tensor, nxt: torch.Tensor) -> dict[str, dict[str, Any]]:
    """The four timed calls: (prefill, decode) x (archbench, transformers)."""
    with torch.inference_mode():
        _, cache = ours.decode(prompt)
        hf_cache = theirs(input_ids=prompt, use_cache=True).past_key_values
    warm = [dict(vars(layer)) for layer in hf_cache.layers]  # tensors by reference: an update replaces them

    def hf_step() -> object:
        out = theirs(input_ids=nxt, past_key_values=hf_cache, use_cache=True)
        for layer, state in zip(hf_cache.layers, warm, strict=True):  # back to the warm cache (a window
            vars(layer).update(state)  # layer cannot be cropped): the next step starts where this one did
        return out

    def hf_prefill() -> object:
        return theirs(input_ids=prompt, use_cache=False)

    return {
        "prefill": {"archbench": lambda: ours(prompt), "transformers": hf_prefill},
        "decode": {"archbench": lambda: ours.decode(nxt, cache), "transformers": hf_step},
    }


def clock(device: str) -> Any:
    """A function timing one call in ms on the device's own clock (CUDA events on a GPU)."""
    if device == "cuda":
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def on_gpu(fn: Any) -> float:
            begin.record()
            fn()
            end.record()
            end.synchronize()
            return float(begin.elapsed_time(end))

        return on_gpu

    def on_cpu(fn: Any) -> float:
        t0 = time.perf_counter_ns()
        fn()
        return (time.perf_counter_ns() - t0) / 1e6

    return on_cpu


def time_pair(fns: dict[str, Any], device: str, rule: StopRule) -> dict[str, Any]:
    """The two sides timed call by call in alternating order (AB, BA, ...), so that whatever else the machine
    does falls on both alike; repetition stops by archbench's :class:`StopRule` judged on the per-pair ratios.
    Both are warmed up first (archbench's ``warm_up``)."""
    sync = (lambda: torch.cuda.synchronize()) if device == "cuda" else (lambda: None)
    one = clock(device)
    ours, theirs = fns["archbench"], fns["transformers"]
    a: list[float] = []
    b: list[float] = []
    ratios: list[float] = []
    with torch.inference_mode():
        for fn in (ours, theirs):
            warm_up(fn, sync, calls=5, seconds=0.3, max_s=60.0)
        start = time.perf_counter()
        while True:
            if len(a) % 2:
                tb, ta = one(theirs), one(ours)
            else:
                ta, tb = one(ours), one(theirs)
            a.append(ta)
            b.append(tb)
            ratios.append(tb / ta)
            if rule.stop_reason(ratios, time.perf_counter() - start) is not None:
                break
    return {
        "archbench_ms": statistics.median(a),
        "transformers_ms": statistics.median(b),
        "ratio": statistics.median(ratios),
        "ratio_iqr": [quantile(ratios, 0.25), quantile(ratios, 0.75)],
        "pairs": len(ratios),
        "stop_reason": rule.stop_reason(ratios, time.perf_counter() - start),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--dtype", default=None, choices=("float32", "bfloat16"), help="default: fp32 CPU, bf16 GPU")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--prompt", type=int, default=256, help="prefill length and the decode step's context")
    parser.add_argument("--time-cap", type=float, default=8.0, help="seconds of timed pairs per mode at most")
    parser.add_argument("--only", help="comma-separated case names")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype or ("bfloat16" if args.device == "cuda" else "float32"))
    rule = StopRule(cv_target=0.01, median_ci=0.01, min_samples=30, min_time_s=0.5, time_cap_s=args.time_cap)
    names = args.only.split(",") if args.only else list(CASES)
    gen = torch.Generator().manual_seed(1)
    rows = []
    began = time.perf_counter()
    for name in names:
        arch = Architecture(**{**BASE, **CASES[name]})
        ours, theirs = models(arch, args.device, dtype)
        prompt = torch.randint(0, arch.vocab_size, (args.batch, args.prompt), generator=gen).to(args.device)
        nxt = torch.randint(0, arch.vocab_size, (args.batch, 1), generator=gen).to(args.device)
        fns = callables(ours, theirs, prompt, nxt)
        row = {
            "case": name,
            "arch_id": arch.arch_id,
            "describe": arch.describe(),
            "family": hf_target(arch).name,
            "attn_implementation": theirs.config._attn_implementation,
            "max_abs_logit_diff": agree(ours, theirs, prompt),
            **{mode: time_pair(fns[mode], args.device, rule) for mode in ("prefill", "decode")},
        }
        rows.append(row)
        print(
            f"{name:34s} {row['family']:10s} prefill {row['prefill']['archbench_ms']:8.3f} vs "
            f"{row['prefill']['transformers_ms']:8.3f} ms  x{row['prefill']['ratio']:.2f}   decode "
            f"{row['decode']['archbench_ms']:7.3f} vs {row['decode']['transformers_ms']:7.3f} ms  "
            f"x{row['decode']['ratio']:.2f}   |dlogit| {row['max_abs_logit_diff']:.1e}",
            flush=True,
        )
    ratios = [r[m]["ratio"] for r in rows for m in ("prefill", "decode")]
    outside = [f"{r['case']}:{m}" for r in rows for m in ("prefill", "decode") if not 0.8 <= r[m]["ratio"] <= 1.25]
    import transformers

    record = {
        "benchmark": "hf_latency",
        "command": " ".join(["python", "benchmarks/hf_latency.py", *(argv if argv is not None else sys.argv[1:])]),
        "device": args.device,
        "dtype": str(dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "prompt": args.prompt,
        "ratio": "median over call pairs of transformers ms / archbench ms (alternating order)",
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "hardware": hardware_fingerprint(args.device),
        "cases": rows,
        "ratio_range": [min(ratios), max(ratios)],
        "outside_0.8_1.25": outside,
        "seconds": round(time.perf_counter() - began, 1),
    }
    out = args.out or RESULTS / f"hf_latency_{args.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"ratios {min(ratios):.2f}..{max(ratios):.2f}; outside 0.8-1.25: {outside or 'none'}; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
