"""What a preparation will make, decided before any token is made: the :class:`Plan` and its digest.

The digest identifies prepared data by what determines its tokens: the corpus content (and an explicit
validation source's), the tokenizer's content, the split rule and the text field read. It names the
cache directory (so an unchanged corpus is tokenized once, wherever it lies) and is recorded in
``meta.json``, from where it enters every trial row as part of ``data_digest``.

The split is decided per document for text (a document is validation when a hash of its bytes falls
below ``val_fraction``: stable under reordering and additions, and identical documents always land on the
same side, so train and validation never share one) and per file for token files, which have no document
boundaries: files whose name has a ``val`` part (``fineweb_val_000000.bin``) are validation, else the
first file in order is (as nanoGPT's FineWeb preparation writes shard 0). An explicit validation source
replaces the rule: everything in it is validation, everything else training.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archbench.data import sources
from archbench.data.sources import TOKENS, SourceFile
from archbench.data.tokenizer import Tokenizer, load_tokenizer
from archbench.errors import ConfigError

FORMAT_VERSION = 1  # bump when preparation would make other tokens from the same inputs
META = "meta.json"
_VAL_NAME = re.compile(r"(^|[^a-z0-9])(val|valid|validation)([^a-z0-9]|$)", re.IGNORECASE)


@dataclass(frozen=True)
class Plan:
    """The inputs of one preparation and the digest of what it makes."""

    files: tuple[SourceFile, ...]
    val_files: tuple[SourceFile, ...]  # an explicit validation source; () when the split rule decides
    tokenizer: Tokenizer
    text_column: str
    val_fraction: float
    digest: str
    max_token: int | None  # token files: the largest id in them (None: text)

    @property
    def tokenized(self) -> bool:
        """The inputs are token files (nothing to tokenize)."""
        return bool(self.files) and self.files[0].kind == TOKENS


def make_plan(
    data: str | Sequence[str],
    tokenizer: str | None = None,
    val: str | Sequence[str] | None = None,
    text_column: str = "text",
    val_fraction: float = 0.1,
) -> Plan:
    """Resolve the sources and the tokenizer, and compute the digest (reads each file once; later calls
    on unchanged files read none: see :func:`archbench.data.sources.content`)."""
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction={val_fraction!r}: must be between 0 and 1 (exclusive)")
    if not isinstance(text_column, str) or not text_column:
        raise ConfigError(f"text_column={text_column!r}: must be the name of a field")
    files = sources.resolve(data)
    val_files = sources.resolve(val, what="validation") if val else ()
    shared = {f.path for f in files} & {f.path for f in val_files}
    if shared:
        raise ConfigError(f"{Path(sorted(shared)[0]).name} is in both the data and the validation source")
    if val_files and (files[0].kind == TOKENS) != (val_files[0].kind == TOKENS):
        raise ConfigError("the data and the validation source must both be text or both be token files")
    tok = load_tokenizer(tokenizer)
    main = sources.content(files)
    extra = sources.content(val_files) if val_files else None
    tops = [c.max_token for c in (main, extra) if c is not None and c.max_token is not None]
    max_token = max(tops) if tops else None
    if max_token is not None and max_token >= tok.info.vocab_size:
        raise ConfigError(
            f"the token files hold token id {max_token}, outside tokenizer {tok.info.source}'s vocabulary "
            f"({tok.info.vocab_size}): give the tokenizer they were made with (tokenizer=tok.json)"
        )
    read_columns = any(f.kind in (sources.JSONL, sources.PARQUET) for f in (*files, *val_files))
    identity = {
        "format": FORMAT_VERSION,
        "content": main.digest,
        "val_content": extra.digest if extra else None,
        "tokenizer": tok.info.digest,
        "eot": tok.info.eot,
        "split": "explicit" if val_files else ("files" if files[0].kind == TOKENS else val_fraction),
        "text_column": text_column if read_columns else None,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return Plan(files, val_files, tok, text_column, val_fraction, digest, max_token)


def is_validation_doc(doc: bytes, val_fraction: float) -> bool:
    """The split rule for a text document: a stable hash of its bytes below ``val_fraction``."""
    h = int.from_bytes(hashlib.blake2b(doc, digest_size=8).digest(), "big")
    return h / 2**64 < val_fraction


def split_token_files(plan: Plan) -> tuple[tuple[SourceFile, ...], tuple[SourceFile, ...]]:
    """(train, validation) token files by the file rule (see the module docstring)."""
    if plan.val_files:
        return plan.files, plan.val_files
    named = tuple(f for f in plan.files if _VAL_NAME.search(Path(f.name).stem))
    if named:
        return tuple(f for f in plan.files if f not in named), named
    if len(plan.files) < 2:
        raise ConfigError(
            f"one token file ({plan.files[0].name}) cannot be split into train and validation: give more "
            "files, one named *val*, or a validation source (val=...)"
        )
    return plan.files[1:], plan.files[:1]


def read_meta(root: Path) -> dict[str, Any]:
    """A prepared directory's ``meta.json`` (ConfigError when it is not one)."""
    try:
        meta = json.loads((root / META).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{root}: no readable {META} ({type(exc).__name__}): not prepared data") from None
    if not isinstance(meta, dict) or meta.get("format") != "archbench-tokens":
        raise ConfigError(f"{root}/{META} is not archbench's prepared-data metadata")
    return meta
