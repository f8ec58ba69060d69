"""``archbench data prepare`` and ``archbench data show``: token shards from your corpus, and what is in them.

    archbench data prepare corpus/ more/*.jsonl --tokenizer tokenizer.json --out shards/
    archbench data prepare corpus/                     # into the data cache (what task=text would use)
    archbench data show shards/                        # shards, tokens, vocabulary, digest

``prepare`` writes nanoGPT / llm.c shards (``train_000000.bin``, ``val_000000.bin``, ...) and ``meta.json``;
the directory appears complete or not at all. ``show`` also reads token files archbench did not write
(a directory of FineWeb shards). Bad input ends in one line and exit status 2, with nothing written.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from archbench.cli.argtypes import positive_int


def add_parser(sub: Any) -> None:
    p = sub.add_parser("data", help="prepare token shards from a corpus, or show prepared data")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    prep = data_sub.add_parser(
        "prepare",
        help="tokenize a corpus into nanoGPT/llm.c shards",
        description="Tokenize text (directories, globs, files; .jsonl and .parquet by a text field) or convert "
        "token files (.bin shards, .npy) into shards and meta.json.",
    )
    prep.add_argument("sources", nargs="+", metavar="SOURCE", help="directory, glob or file")
    prep.add_argument("--tokenizer", default=None, help="bytes (default) or a tokenizer.json")
    prep.add_argument("--val", nargs="+", default=None, metavar="SOURCE", help="explicit validation source(s)")
    prep.add_argument("--text-column", default="text", help="JSONL/parquet field holding the text (default text)")
    prep.add_argument("--val-fraction", type=float, default=0.1, help="share of documents held out (default 0.1)")
    prep.add_argument("--workers", type=positive_int, default=None, help="processes (default: one per core)")
    prep.add_argument("--shard-tokens", type=positive_int, default=None, help="tokens per shard (default 100M)")
    prep.add_argument("--out", default=None, help="output directory (default: the data cache)")
    prep.add_argument("--no-progress", action="store_true", help="no progress bar")
    prep.set_defaults(func=cmd_prepare)

    show = data_sub.add_parser("show", help="shards, tokens, vocabulary and digest of prepared data")
    show.add_argument("dir", help="a directory written by `archbench data prepare`, or of token files")
    show.add_argument("--tokenizer", default=None, help="the tokenizer of token files archbench did not write")
    show.set_defaults(func=cmd_show)


def cmd_prepare(args: argparse.Namespace) -> int:
    from archbench.data import DataSpec, open_prepared, prepare
    from archbench.data.preparation import SHARD_TOKENS

    spec = DataSpec(args.sources, args.tokenizer, args.val, args.text_column, args.val_fraction)
    root = prepare(
        spec, out=args.out, workers=args.workers, progress=not args.no_progress,
        shard_tokens=args.shard_tokens or SHARD_TOKENS,
    )  # fmt: skip
    ds = open_prepared(root)
    tokens = {s: sum(i.count for i in getattr(ds, s)) for s in ("train", "val")}
    print(
        f"{root}: {tokens['train']:,} train + {tokens['val']:,} validation tokens in "
        f"{len(ds.train) + len(ds.val)} shards, vocab {ds.vocab_size}, digest {ds.digest}"
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from archbench.data import DataSpec, open_data, read_meta, sources
    from archbench.data.plan import META
    from archbench.data.tokenizer import describe
    from archbench.errors import ConfigError

    root = Path(args.dir)
    if not root.is_dir():
        raise ConfigError(f"not a directory: {root}")
    meta = read_meta(root) if (root / META).is_file() else None
    if meta is None and sources.resolve(str(root))[0].kind != sources.TOKENS:
        raise ConfigError(f"{root} holds text, not prepared data: run archbench data prepare {root} --out DIR")
    ds = open_data(DataSpec(str(root), args.tokenizer))
    table = Table(title=f"{root}  digest {ds.digest}")
    for col, justify in (("split", "left"), ("file", "left"), ("tokens", "right"), ("dtype", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for split in ("train", "val"):
        for info in getattr(ds, split):
            name = info.path.relative_to(root) if info.path.is_relative_to(root) else info.path
            table.add_row(split, str(name), f"{info.count:,}", info.dtype.name)
    console = Console()
    console.print(table)
    tokens = {s: sum(i.count for i in getattr(ds, s)) for s in ("train", "val")}
    lines = [
        f"tokens: {tokens['train']:,} train, {tokens['val']:,} validation",
        f"tokenizer: {describe(ds.tokenizer)}   vocabulary: {ds.vocab_size}",
        f"digest: {ds.digest}",
    ]
    if meta is not None and meta.get("bytes"):
        docs, nbytes = meta["documents"], meta["bytes"]
        per = {s: nbytes[s] / tokens[s] if tokens[s] else 0.0 for s in ("train", "val")}
        lines.append(f"documents: {docs['train']:,} train, {docs['val']:,} validation")
        lines.append(f"UTF-8 bytes per token: {per['train']:.3f} train, {per['val']:.3f} validation")
    for line in lines:
        console.print(line, highlight=False)
    return 0
