"""``archbench measure ARCH.yaml``: latency, energy, memory and cost of one architecture on this machine.

    archbench measure my_arch.yaml [--mode prefill] [--batch B] [--seq S] [--compile] [--format table|json]
    archbench measure my_arch.yaml --mode decode --batch B --context C [--compile]
    archbench measure my_arch.yaml --mode generate --batch B --prompt P --new N [--compile]

The model is built from the config, put in its deployed precision (the architecture's ``quant``) and
measured on random token ids: ``prefill`` is one forward over ``B x S`` tokens
(:func:`archbench.latency.measure_model`); ``decode`` one step from a warm KV cache of ``C`` tokens
and ``generate`` time to first token and per output token (:mod:`archbench.latency.decode`).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from archbench.cli.argtypes import nonnegative_float, positive_float, positive_int
from archbench.errors import ConfigError
from archbench.metrics import units

UNITS = units()  # of the cost metrics printed here (the quality ones are never measured by this command)


def add_parser(sub: Any) -> None:
    from archbench.latency.stats import StopRule  # torch-free: the parser is built on every command

    p = sub.add_parser("measure", help="measure latency, energy, memory, FLOPs and size of one architecture")
    p.add_argument("file", help="architecture YAML (as written by `archbench export`) or preset:NAME")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if available, else cpu")
    p.add_argument(
        "--mode", choices=("prefill", "decode", "generate"), default="prefill",
        help="prefill: one forward over the sequence; decode: one token from a warm KV cache; generate: "
        "time to first token and per output token (default prefill)",
    )  # fmt: skip
    p.add_argument("--batch", type=positive_int, default=1, help="batch size (default 1)")
    p.add_argument("--seq", type=positive_int, default=None, help="prefill length (default: the arch's max_seq_len)")
    p.add_argument("--context", type=positive_int, default=None, help="decode: tokens in the cache (max_seq_len/2)")
    p.add_argument("--prompt", type=positive_int, default=None, help="generate: prompt tokens (max_seq_len/2)")
    p.add_argument("--new", type=positive_int, default=32, help="generate: new tokens, at least 2 (default 32)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")
    p.add_argument("--classes", type=positive_int, default=None, help="measure the encoder classifier with K classes")
    rule = StopRule()  # its defaults, stated there only
    p.add_argument(
        "--cv-target", type=positive_float, default=rule.cv_target,
        help=f"stop repeating below this CV ({rule.cv_target:g})",
    )  # fmt: skip
    p.add_argument(
        "--median-ci", type=nonnegative_float, default=rule.median_ci,
        help=f"or stop once the median's 95%% CI half-width is under this fraction of it ({rule.median_ci:g}; 0: off)",
    )  # fmt: skip
    p.add_argument(
        "--time-cap", type=positive_float, default=rule.time_cap_s,
        help=f"seconds of timed repetition at most ({rule.time_cap_s:g})",
    )  # fmt: skip
    p.add_argument("--energy-window", type=positive_float, default=2.0, help="seconds of the energy window (2)")
    p.add_argument("--no-energy", action="store_true", help="skip the energy window")
    p.add_argument("--flush-l2", action="store_true", help="flush the GPU's L2 before every timed call")
    p.add_argument("--cuda-graph", action="store_true", help="replay prefill or the decode step from a CUDA graph")
    p.add_argument("--compile", action="store_true", help="time torch.compile'd execution instead of eager")
    p.set_defaults(func=cmd_measure)


def cmd_measure(args: argparse.Namespace) -> int:
    import torch

    from archbench.latency import StopRule, measure_model
    from archbench.latency.decode import measure_decode, measure_generate
    from archbench.search_space import build, load_arch
    from archbench.search_space.quantize import quantize

    arch = load_arch(args.file)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: torch sees no CUDA GPU on this machine (use --device cpu)")
    if args.mode != "prefill" and args.classes is not None:
        raise ConfigError(f"--mode {args.mode} needs the decoder LM: drop --classes")
    _check_lengths(args, arch.max_seq_len)
    model = build(arch, num_classes=args.classes).to(device).eval()
    deployed = quantize(model, arch.quant, device, copy_model=False)
    if not deployed.ok or deployed.model is None:
        raise ConfigError(f"quant {arch.quant} cannot run on {device}: {deployed.reason}")
    rule = StopRule(cv_target=args.cv_target, median_ci=args.median_ci, time_cap_s=args.time_cap)
    exec_mode = "compile" if args.compile else "eager"
    record: dict[str, Any] = {"arch_id": arch.arch_id, "mode": args.mode, "batch": args.batch}
    if args.mode == "decode":
        result = measure_decode(
            deployed.model, arch=arch, device=device, batch=args.batch, context=args.context,
            exec_mode=exec_mode, rule=rule, cuda_graph=args.cuda_graph,
        )  # fmt: skip
        record["context"] = result.hardware["decode_context"]
    elif args.mode == "generate":
        result = measure_generate(
            deployed.model, arch=arch, device=device, batch=args.batch, prompt=args.prompt,
            new_tokens=args.new, exec_mode=exec_mode, rule=rule,
        )  # fmt: skip
        record.update(prompt=result.hardware["generate_prompt"], new=args.new)
    else:
        result = measure_model(
            deployed.model,
            arch=arch,
            device=device,
            batch=args.batch,
            seq_len=args.seq,
            rule=rule,
            energy=not args.no_energy,
            energy_window_s=args.energy_window,
            flush_l2=args.flush_l2,
            cuda_graph=args.cuda_graph,
            compile=args.compile,
        )
        record["seq_len"] = args.seq or arch.max_seq_len
    record.update(result.to_dict())
    if args.format == "json":
        print(json.dumps(record, default=str))
    else:
        _print_table(record, result.metrics, result.null_reasons)
    return 0


def _check_lengths(args: argparse.Namespace, max_seq_len: int) -> None:
    """Lengths that do not fit the architecture: one line naming the limit."""
    if args.seq is not None and args.seq > max_seq_len:
        raise ConfigError(f"--seq {args.seq} exceeds the architecture's max_seq_len={max_seq_len}")
    if args.context is not None and args.context >= max_seq_len:
        raise ConfigError(f"--context {args.context}: must be below max_seq_len={max_seq_len} (room for one token)")
    if args.mode == "generate":
        prompt = args.prompt if args.prompt is not None else max_seq_len // 2
        if args.new < 2:
            raise ConfigError(f"--new {args.new}: generate needs at least 2 new tokens (TTFT, then TPOT)")
        if prompt + args.new > max_seq_len:
            raise ConfigError(f"--prompt {prompt} + --new {args.new} exceeds max_seq_len={max_seq_len}")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _print_table(record: dict[str, Any], metrics: Any, reasons: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    shape = "  ".join(f"{k}={record[k]}" for k in ("batch", "seq_len", "context", "prompt", "new") if k in record)
    table = Table(title=f"archbench measure {record['arch_id']}  mode={record['mode']}  {shape}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("note")
    for key, value in metrics.items():
        shown = "null" if value is None else f"{_fmt(value)} {UNITS.get(key, '')}".strip()
        table.add_row(key, shown, reasons.get(key, ""))
    console.print(table)
    keys = ("device_name", "device_kind", "torch_threads", "timing_method", "measure_mode", "exec_mode")
    console.print("  ".join(f"{k}={record.get(k)}" for k in keys))
