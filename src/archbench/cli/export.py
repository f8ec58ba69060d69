"""``archbench export``: a leaderboard row as archbench's config (``--to hydra``, the default) or in the
ecosystem's formats (``--to hf|litgpt``, :mod:`archbench.cli.interop`).

    archbench export ARCH_ID [-o FILE.yaml]                    # --to hydra (default): archbench's own YAML
    archbench export ARCH_ID --to hf DIR | --to litgpt [DIR]  # see archbench.cli.interop
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from archbench.cli.leaderboard import _filters, _open, _query_args, _warnings_to_stderr
from archbench.errors import ConfigError


def cmd_export(args: argparse.Namespace) -> int:
    lb = _open(args)
    if args.to != "hydra":
        from archbench.cli.interop import cmd_export_to

        with _warnings_to_stderr():
            return cmd_export_to(args, lb, _filters(args, steer=False))
    if args.dir:
        raise ConfigError(f"--to hydra writes one file: use -o FILE.yaml (not {args.dir!r})")
    with _warnings_to_stderr():
        text = lb.export(args.arch_id, args.output, **_filters(args, steer=False))
    if args.output:
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


class _ExportTo(argparse.Action):
    """``--to FORMAT [DIR]``: argparse takes no positional after an option, so DIR may come with it."""

    formats = ("hydra", "hf", "litgpt")

    def __call__(self, parser: argparse.ArgumentParser, ns: argparse.Namespace, values: Any, _opt: Any = None) -> None:
        fmt, *rest = values
        if fmt not in self.formats:
            parser.error(f"argument --to: invalid choice: {fmt!r} (choose from {', '.join(self.formats)})")
        if len(rest) > 1 or (rest and ns.dir):
            parser.error("argument --to: FORMAT [DIR] takes one directory")
        ns.to = fmt
        if rest:
            ns.dir = rest[0]


def add_parser(sub: Any) -> None:
    """Register ``export`` on the top-level subparsers."""
    export = sub.add_parser("export", help="write a leaderboard architecture as a runnable config")
    export.add_argument("arch_id", help="arch id or a unique prefix of it")
    export.add_argument("dir", nargs="?", metavar="DIR", help="--to hf / litgpt: the directory to write")
    export.add_argument("-o", "--output", metavar="FILE.yaml", help="write here (default: stdout)")
    export.add_argument(
        "--to",
        nargs="+",
        action=_ExportTo,
        default="hydra",
        metavar="FORMAT",
        help="hydra: archbench's YAML (default); hf DIR: a transformers model directory (config.json, and "
        "model.safetensors when the row kept weights); litgpt [DIR]: model_config.yaml (+ lit_model.pth in DIR)",
    )
    export.add_argument("--force", action="store_true", help="replace an existing non-empty DIR (hf) or file")
    export.add_argument("--no-weights", action="store_true", help="--to hf / litgpt: write the config only")
    _query_args(export, fmt=False, steer=False)
    export.set_defaults(func=cmd_export)
