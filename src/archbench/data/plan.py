"""What a preparation will make, decided before any token is made: the :class:`DataSpec` that names the
data, the :class:`Plan` made from it, and its digest.

A :class:`DataSpec` (sources, tokenizer, an explicit validation source, the text field, the split share)
is the one value :func:`~archbench.data.open_data`, :func:`~archbench.data.identify`,
:func:`~archbench.data.prepare` and :func:`make_plan` take: validated once, where it is made.

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
import os
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


Sources = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


@dataclass(frozen=True)
class DataSpec:
    """What names a dataset: ``data`` (one source or several: directories, globs, files, or one directory
    archbench prepared), the ``tokenizer`` (``bytes``, a ``tokenizer.json``; None: bytes, or a prepared
    directory's own), an explicit validation source ``val`` (replaces the split rule), the JSONL/parquet
    field that holds the text, and the share of documents held out for validation.

    ``DataSpec("corpus/", "tokenizer.json")``; sources are kept as tuples of strings. A bad setting is a
    one-line ConfigError where the value is made."""

    data: tuple[str, ...]
    tokenizer: str | None = None
    val: tuple[str, ...] = ()
    text_column: str = "text"
    val_fraction: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", _as_sources(self.data))
        object.__setattr__(self, "val", _as_sources(self.val))
        if self.tokenizer is not None:
            object.__setattr__(self, "tokenizer", str(self.tokenizer))
        if not self.data:
            raise ConfigError("no data source given: name a directory, a glob or files")
        check_split(self.val_fraction, self.text_column)

    @property
    def prepared(self) -> Path | None:
        """The directory archbench prepared (it holds ``meta.json``), when ``data`` is one; else None."""
        root = Path(self.data[0]).expanduser()
        return root if len(self.data) == 1 and (root / META).is_file() else None


def check_split(val_fraction: Any, text_column: Any, where: str = "") -> None:
    """Refuse a split share outside (0, 1) or a text field that is no name, in one line (``where`` prefixes
    it, e.g. ``task text: ``)."""
    share_ok = isinstance(val_fraction, int | float) and not isinstance(val_fraction, bool)
    if not share_ok or not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"{where}val_fraction={val_fraction!r}: must be between 0 and 1 (exclusive)")
    if not isinstance(text_column, str) or not text_column:
        raise ConfigError(f"{where}text_column={text_column!r}: must be the name of a field")


def _as_sources(value: Sources | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | os.PathLike):
        return (os.fspath(value),)
    return tuple(os.fspath(v) for v in value)


@dataclass(frozen=True)
class Plan:
    """The inputs of one preparation and the digest of what it makes."""

    files: tuple[SourceFile, ...]
    val_files: tuple[SourceFile, ...]  # an explicit validation source; () when the split rule decides
    tokenizer: Tokenizer
    spec: DataSpec
    digest: str
    max_token: int | None  # token files: the largest id in them (None: text)

    @property
    def tokenized(self) -> bool:
        """The inputs are token files (nothing to tokenize)."""
        return bool(self.files) and self.files[0].kind == TOKENS

    @property
    def text_column(self) -> str:
        return self.spec.text_column

    @property
    def val_fraction(self) -> float:
        return self.spec.val_fraction


def make_plan(spec: DataSpec) -> Plan:
    """Resolve the sources and the tokenizer, and compute the digest (reads each file once; later calls
    on unchanged files read none: see :func:`archbench.data.sources.content`)."""
    files = sources.resolve(spec.data)
    val_files = sources.resolve(spec.val, what="validation") if spec.val else ()
    shared = {f.path for f in files} & {f.path for f in val_files}
    if shared:
        raise ConfigError(f"{Path(sorted(shared)[0]).name} is in both the data and the validation source")
    if val_files and (files[0].kind == TOKENS) != (val_files[0].kind == TOKENS):
        raise ConfigError("the data and the validation source must both be text or both be token files")
    tok = load_tokenizer(spec.tokenizer)
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
        "split": "explicit" if val_files else ("files" if files[0].kind == TOKENS else spec.val_fraction),
        "text_column": spec.text_column if read_columns else None,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return Plan(files, val_files, tok, spec, digest, max_token)


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
