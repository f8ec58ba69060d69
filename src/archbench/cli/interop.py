"""``archbench export ID --to hf|litgpt`` and ``archbench space import-hf``: the ecosystem's formats.

    archbench export ARCH_ID --to hf DIR [--force] [--no-weights]   # config.json (+ model.safetensors)
    archbench export ARCH_ID --to litgpt [DIR | -o FILE]            # model_config.yaml (+ lit_model.pth in DIR)
    archbench space import-hf config.json [-o arch.yaml] [--strict]

``--to hydra`` (the default) stays in :mod:`archbench.cli.leaderboard`. ``--to hf`` also writes the row's
trained weights (its ``weights`` column, from ``archbench evaluate --save``) mapped to transformers' names.
transformers is needed for hf (litgpt's YAML needs no litgpt); a missing one is one line, exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from archbench.errors import ConfigError


def _weights_path(row: dict[str, Any], root: Path) -> Path | None:
    """The row's weights file: an absolute path, or one relative to the leaderboard (else to here)."""
    from archbench.interop.kept import locate

    kept = row.get("weights")
    if not kept:
        return None
    path = locate(kept, root)
    if not path.is_file():
        raise ConfigError(
            f"arch {row['arch_id']}: its weights file {kept} is gone; --no-weights exports the config (a search "
            "with search.keep_weights=front deletes the weights of rows not on its final front)"
        )
    return path


def cmd_export_to(args: argparse.Namespace, lb: Any, filters: dict[str, Any]) -> int:
    """``export --to hf|litgpt`` of the latest row of the arch passing ``filters``."""
    from archbench.leaderboard.export import arch_from_row, latest_row

    row = latest_row(lb.arch_rows(args.arch_id, **filters))
    arch = arch_from_row(row)
    if args.to == "litgpt":
        return _litgpt(args, arch, row, Path(lb.root))
    out = args.dir or args.output
    if out is None:
        raise ConfigError("--to hf writes a model directory: give DIR (archbench export ID --to hf DIR)")
    from archbench.interop.hf_model import check_target_dir, write_hf_dir
    from archbench.interop.weights import load_weights

    check_target_dir(Path(out), args.force)  # before reading any weights
    path = None if args.no_weights else _weights_path(row, Path(lb.root))
    weights = load_weights(path) if path is not None else None
    _quiet_transformers()
    files = write_hf_dir(arch, out, weights, force=args.force)
    what = "with its trained weights" if weights is not None else "config only: no weights written"
    print(f"wrote {out}: {', '.join(f.name for f in files)} (arch {arch.arch_id}, {what})")
    return 0


def _litgpt(args: argparse.Namespace, arch: Any, row: dict[str, Any], root: Path) -> int:
    """``--to litgpt``: model_config.yaml to stdout, a file or DIR; in DIR also lit_model.pth from the row's
    weights."""
    from archbench.interop.litgpt import CHECKPOINT_NAME, CONFIG_NAME, dump_litgpt, save_litgpt, save_litgpt_checkpoint
    from archbench.interop.weights import load_weights

    out = args.dir or args.output
    if out is None:
        sys.stdout.write(dump_litgpt(arch))
        return 0
    into_dir = Path(out).is_dir() or not Path(out).suffix
    dest = Path(out) / CONFIG_NAME if into_dir else Path(out)
    clash = [p for p in (dest, dest.parent / CHECKPOINT_NAME) if p.exists() and (into_dir or p == dest)]
    if clash and not args.force:
        raise ConfigError(f"{clash[0]} exists; use --force to replace it")
    dump_litgpt(arch)  # refuses an inexpressible arch before reading weights
    path = None if args.no_weights or not into_dir else _weights_path(row, root)
    written = [save_litgpt(arch, dest)]
    if path is not None:
        written.append(save_litgpt_checkpoint(load_weights(path), dest.parent))
    print(f"wrote {', '.join(map(str, written))} (arch {arch.arch_id})")
    return 0


def _quiet_transformers() -> None:
    """No progress bars on a one-shot command's stderr."""
    from transformers.utils import logging

    logging.disable_progress_bar()


def cmd_import_hf(args: argparse.Namespace) -> int:
    from archbench.interop.hf import from_hf
    from archbench.search_space.export import dump_config, save_config

    imported = from_hf(args.config, strict=args.strict)
    arch = imported.arch
    comment = f"imported from {args.config} ({imported.model_type})"
    if imported.left_out:
        comment += f"\nleft out: {', '.join(imported.left_out)}"
        print(f"archbench: note: {imported.note()}", file=sys.stderr)
    if args.output:
        save_config(arch, args.output, comment=comment)
        print(f"wrote {args.output} (arch {arch.arch_id}: {arch.describe()})")
    else:
        sys.stdout.write(dump_config(arch, comment=comment))
    return 0


def add_import_parser(space_sub: Any) -> None:
    """Register ``archbench space import-hf``."""
    p = space_sub.add_parser("import-hf", help="an architecture file from a transformers config.json")
    p.add_argument("config", help="config.json of a Llama, Mistral, Qwen2, GPT-2 or Starcoder2 model (or its DIR)")
    p.add_argument("-o", "--output", metavar="FILE.yaml", help="write here (default: stdout)")
    p.add_argument("--strict", action="store_true", help="refuse a config with numbers archbench would leave out")
    p.set_defaults(func=cmd_import_hf)
