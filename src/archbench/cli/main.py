"""The ``archbench`` command. Hydra lives here only: overrides are composed into plain data, and the
library below sees typed objects (SearchSpace, Architecture), never a DictConfig.

    archbench space show   [space=NAME | space=FILE.yaml] [hydra overrides...]
    archbench space sample [space=NAME] [--n N] [--seed S] [--any-device] [-o FILE]
    archbench space import-hf config.json [-o FILE]   # a transformers config as an architecture file
    archbench build FILE.yaml           # build an exported config, print its parameter count
    archbench build preset:gpt2         # a published shape (preset:NAME works wherever FILE.yaml does)

Errors a user can cause end in one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from archbench.cli.argtypes import integer, positive_int
from archbench.cli.interop import add_import_parser
from archbench.errors import ArchbenchError, ConfigError, SearchStopped

SUBCOMMAND_MODULES = (
    "archbench.cli.search",  # archbench search
    "archbench.cli.leaderboard",  # archbench leaderboard ...
    "archbench.cli.export",  # archbench export
    "archbench.cli.measure",  # archbench measure
    "archbench.cli.evaluate",  # archbench evaluate
    "archbench.cli.data",  # archbench data prepare, archbench data show
)


def compose(overrides: Sequence[str]) -> dict[str, Any]:
    """The root config with Hydra ``key=value`` overrides applied, as plain containers.

    ``space=PATH.yaml`` (an existing file) loads a user's own space file instead of a built-in one;
    ``task.KEY=VALUE`` is a task setting (:mod:`archbench.cli.task_settings`), put under ``task``.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from archbench.cli.task_settings import split_task_settings

    space_file = None
    rest = []
    settings, overrides = split_task_settings(overrides)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"expected key=value, got {item!r} (e.g. space=lm_small)")
        key, _, value = item.partition("=")
        if key == "study":  # study=NAME is short for study.name=NAME
            key, item = "study.name", f"study.name={value}"
        if key in ("budget.rungs", "budget.eta"):  # the funnel's settings, spelled as issue #8 does
            key = "search." + key.split(".", 1)[1]
            item = f"{key}={value}"
        if key == "space" and (value.endswith((".yaml", ".yml")) or "/" in value):
            space_file = Path(value)
        elif any(c in value for c in "=<>") and not value.startswith(("'", '"')):
            # budget=steps=300, constraints=[latency_ms<=20]: Hydra's grammar takes these only quoted
            rest.append(f"{key}='{value}'")
        else:
            rest.append(item)
    try:
        with initialize_config_module("archbench.conf", version_base=None):
            cfg = hydra_compose("config", overrides=rest)
    except (HydraException, OmegaConfBaseException) as exc:
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()] or [type(exc).__name__]
        msg = lines[0] + "".join(f"; {line}" for line in lines[1:2] if line.startswith("To append"))
        if "space" in msg and "Could not find" in msg:
            from archbench.search_space import SearchSpace

            msg += f" (built-in spaces: {', '.join(SearchSpace.builtin_names())}; or space=PATH.yaml)"
        raise ConfigError(msg) from None
    data = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(data, dict)
    data["task"].update(settings)
    if space_file is not None:
        if not space_file.is_file():
            raise ConfigError(f"search space file not found: {space_file}")
        try:
            loaded = yaml.safe_load(space_file.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"{space_file}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{space_file}: a space file must be a mapping with 'fields:'")
        loaded.setdefault("name", space_file.stem)
        data["space"] = loaded
    return data


def _space(cfg: dict[str, Any]) -> Any:
    from archbench.cli.task_settings import space_for

    return space_for(cfg)


def cmd_space_show(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    space = _space(compose(args.overrides))
    size = space.size()
    table = Table(title=f"space {space.name}", show_lines=False)
    table.add_column("field")
    table.add_column("choices")
    for key, opts in space.choices.items():
        shown = ", ".join("null (= depth)" if o is None else str(o) for o in opts)
        table.add_row(key, shown if len(opts) > 1 else f"{shown} (fixed)")
    console = Console()
    console.print(table)
    console.print(
        f"free fields: {len(space.free_fields)}   product of choices: {size.raw:,}   "
        f"distinct valid architectures: {size.valid:,}"
    )
    return 0


def cmd_space_sample(args: argparse.Namespace) -> int:
    space = _space(compose(args.overrides))
    note = ""
    if not args.any_device:
        from archbench.search_space.quantize import supported_quants

        device = "cuda" if _cuda_available() else "cpu"
        restricted = space.for_device(supported_quants(device))
        if restricted.dropped:
            note = f" (left out on this {device}: {', '.join(restricted.dropped['quant'])}; --any-device keeps them)"
        space = restricted
    archs = space.sample(args.n, seed=args.seed)
    docs = [{"arch_id": a.arch_id, **a.to_dict()} for a in archs]
    text = f"# {len(archs)} architectures from space {space.name}, seed {args.seed}{note}\n"
    text += yaml.safe_dump(docs, sort_keys=False)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {len(archs)} architectures to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    import torch

    from archbench.search_space import build, load_arch
    from archbench.search_space.model import count_params

    arch = load_arch(args.file)
    with torch.device("meta"):
        model = build(arch)
    print(f"{arch.arch_id}  {arch.describe()}  params={count_params(model):,}")
    return 0


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archbench", description="Hardware-aware architecture search and benchmarking for transformers."
    )
    parser.add_argument("--version", action="version", version=f"archbench {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    space = sub.add_parser("space", help="show or sample a search space")
    space_sub = space.add_subparsers(dest="space_command", required=True, metavar="ACTION")
    show = space_sub.add_parser("show", help="fields, choices and size of a space")
    show.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. space=lm_small")
    show.set_defaults(func=cmd_space_show)
    sample = space_sub.add_parser("sample", help="YAML of valid architectures drawn from a space")
    sample.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. space=lm_small")
    sample.add_argument("--n", type=positive_int, default=5, help="how many (default 5)")
    sample.add_argument("--seed", type=integer, default=0, help="random seed (default 0)")
    sample.add_argument("--any-device", action="store_true", help="keep quant modes this device cannot run")
    sample.add_argument("-o", "--output", help="write to this file instead of stdout")
    sample.set_defaults(func=cmd_space_sample)
    add_import_parser(space_sub)

    build = sub.add_parser("build", help="build an exported architecture config and print its size")
    build.add_argument("file", help="YAML written by `archbench export` (or a mapping of fields), or preset:NAME")
    build.set_defaults(func=cmd_build)

    # Further verbs live in their own modules, each with add_parser(subparsers).
    for module in SUBCOMMAND_MODULES:
        importlib.import_module(module).add_parser(sub)
    return parser


def _version() -> str:
    from archbench.version import archbench_version

    return archbench_version()


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not hasattr(args, "settings"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:  # task.KEY=VALUE after an option (argparse takes positionals in one run only)
        args.settings = [*args.settings, *extra]
    try:
        return int(args.func(args))
    except SearchStopped as exc:  # a signal or a lost cluster: its line says what is recorded
        print(f"archbench: {exc}", file=sys.stderr)
        return exc.exit_status
    except ArchbenchError as exc:
        print(f"archbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("archbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
