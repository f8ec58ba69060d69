"""``archbench evaluate ARCH.yaml``: train one architecture briefly on a task, score it and measure it.

    archbench evaluate my_arch.yaml [--task charlm] [--budget steps=400] [--seed 0] [--lr 3e-3]
                                    [--schedule cosine|wsd] [--warmup-steps N]
                                    [--device cpu|cuda] [--no-measure] [--format table|json] [--save DIR]
                                    [task.KEY=VALUE ...]     # e.g. --task text task.data=corpus/

``--schedule wsd --warmup-steps N`` trains as a funnel with ``search.continuation=true`` did (its rows'
``train_schedule`` says which warm-up), so a picked row's model can be trained again the same way.

Exit status 0 when the trial's status is ok, 1 for any other recorded status (diverged, oom, failed,
unsupported; the result is still printed), 2 for a user error (bad file, budget, task name or setting,
data that cannot be read, an architecture whose vocabulary is smaller than the task's).

``--save DIR`` keeps the trained float model's weights as safetensors in DIR (the architecture in the file's
metadata; ``archbench export --to hf`` maps them for transformers). ``FILE`` may be ``preset:NAME``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from archbench.cli.argtypes import positive_float


def add_parser(sub: Any) -> None:
    from archbench.evaluators.budget import DEFAULT_BUDGET

    p = sub.add_parser("evaluate", help="train an architecture on a task for a short budget, score and measure it")
    p.add_argument("file", help="architecture YAML (as written by `archbench export`) or preset:NAME")
    p.add_argument("settings", nargs="*", metavar="task.KEY=VALUE", help="task settings, as for archbench search")
    p.add_argument("--task", default="charlm", help="task name: charlm (default), recall, digits, or a registered one")
    p.add_argument("--budget", default=str(DEFAULT_BUDGET), help=f"steps=N, tokens=N or seconds=X ({DEFAULT_BUDGET})")
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument("--lr", type=positive_float, default=None, help="peak learning rate (default 3e-3)")
    p.add_argument("--schedule", choices=("cosine", "wsd"), default="cosine", help="learning-rate schedule")
    p.add_argument("--warmup-steps", type=int, default=None, help="warm-up steps (default: 10%% of the budget)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if available, else cpu")
    p.add_argument("--no-measure", action="store_true", help="skip latency/energy/memory measurement")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")
    p.add_argument("--save", metavar="DIR", help="keep the trained float weights as safetensors in DIR")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from archbench.cli.task_settings import split_task_settings
    from archbench.errors import ConfigError
    from archbench.evaluators import Budget, TrainConfig, evaluate, get_task, resolve_device
    from archbench.search_space import load_arch

    arch = load_arch(args.file)
    settings, rest = split_task_settings(args.settings)
    if rest:
        raise ConfigError(f"expected task.KEY=VALUE, got {rest[0]!r} (e.g. task.data=corpus/)")
    task = get_task(args.task, **settings)
    task.check(arch)  # before the data is prepared: a too-small vocabulary is the caller's error
    budget = Budget.parse(args.budget)
    device = resolve_device(args.device)
    schedule = {"schedule": args.schedule, "warmup_steps": args.warmup_steps}
    config = TrainConfig(**schedule) if args.lr is None else TrainConfig(lr=args.lr, **schedule)
    task.ready()  # the data, prepared once all settings are known good
    result = evaluate(
        arch, task, budget, seed=args.seed, device=device, measure=not args.no_measure, config=config,
        save_weights=args.save,
    )  # fmt: skip
    if args.format == "json":
        row = result.to_row()
        row["null_reasons"] = dict(result.null_reasons)
        print(json.dumps(row, indent=2, default=str))
    else:
        _print_table(result)
    return 0 if result.status == "ok" else 1


def _print_table(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    title = f"{result.arch_id}  {result.arch.describe()}  task={result.task} {result.budget} seed={result.seed}"
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("note")
    for name, value in result.metrics.items():
        shown = "-" if value is None else (f"{value:.6g}" if isinstance(value, float) else str(value))
        table.add_row(name, shown, result.null_reasons.get(name, ""))
    console.print(table)
    status = result.status if not result.reason else f"{result.status}: {result.reason}"
    device = result.hardware.get("device_name") or result.hardware.get("device_kind", "")
    console.print(f"status {status}   device {device}")
    if result.weights:
        console.print(f"weights {result.weights}")
