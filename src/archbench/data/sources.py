"""Corpus sources: which files a ``SOURCE`` names, what each holds, their content digest, their documents.

A source is a directory (every file under it, hidden ones left out, in sorted relative-path order), a
glob (``corpus/**/*.txt``), or a file; several sources are read in the order given. A file's suffix
says how it is read:

* ``.jsonl`` / ``.ndjson``: one JSON object per line; the document is the named text field (``text``
  by default). A line without that field is an error; a ``null`` value is skipped.
* ``.parquet``: the document is the named string column of each row (nulls are skipped).
* ``.bin`` (nanoGPT / llm.c shards) and ``.npy`` (1-D uint16/uint32 arrays): tokens, already tokenized.
* anything else: plain text, one document per file.

Text is UTF-8. The one rule for bytes that are not: each invalid sequence becomes U+FFFD (Python's
``errors="replace"``), so every document is valid UTF-8 and its bytes are counted after that rule.

The content digest hashes every file's relative name and bytes; it is remembered under the data cache,
keyed by the files' paths, sizes and modification times, so an unchanged corpus is not read again to be
identified. Token files are scanned for their largest token id in the same pass.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import itertools
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archbench.data import shards
from archbench.data.cache import data_cache, write_json
from archbench.errors import ConfigError

TEXT, JSONL, PARQUET, TOKENS = "text", "jsonl", "parquet", "tokens"
_GLOB_CHARS = frozenset("*?[")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class SourceFile:
    """One file of a corpus: where it is, the name it is ordered and identified by, how it is read."""

    path: str  # absolute
    name: str  # relative to the source that named it (the digest does not depend on where the corpus is)
    kind: str  # TEXT | JSONL | PARQUET | TOKENS
    size: int
    mtime_ns: int


def kind_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return JSONL
    if suffix == ".parquet":
        return PARQUET
    if suffix in shards.TOKEN_SUFFIXES:
        return TOKENS
    return TEXT


def _entry(path: Path, name: str) -> SourceFile:
    st = path.stat()
    return SourceFile(str(path.resolve()), name, kind_of(path), st.st_size, st.st_mtime_ns)


def _walk(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        out.extend(Path(dirpath) / f for f in filenames if not f.startswith("."))
    return sorted((p for p in out if p.is_file()), key=lambda p: p.relative_to(root).as_posix())


def resolve(specs: str | Sequence[str], what: str = "data") -> tuple[SourceFile, ...]:
    """The files ``specs`` name, in order, each once; a missing path or a pattern matching nothing is a
    ConfigError, and so is mixing token files with text."""
    files: list[SourceFile] = []
    for spec in [specs] if isinstance(specs, str | os.PathLike) else list(specs):
        spec = str(spec)
        path = Path(spec).expanduser()
        if _GLOB_CHARS & set(spec) and not path.exists():
            base = Path(*[p for p in path.parts[: _first_magic(path.parts)]] or ["."])
            matched = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
            if not matched:
                raise ConfigError(f"{what} source {spec}: the pattern matches no files")
            files.extend(_entry(p, p.relative_to(base).as_posix()) for p in matched)
        elif path.is_dir():
            found = _walk(path)
            if not found:
                raise ConfigError(f"{what} source {spec}: the directory holds no files")
            files.extend(_entry(p, p.relative_to(path).as_posix()) for p in found)
        elif path.is_file():
            files.append(_entry(path, path.name))
        else:
            raise ConfigError(f"{what} source not found: {spec}")
    unique: dict[str, SourceFile] = {}
    for f in files:
        unique.setdefault(f.path, f)
    return _one_kind(tuple(unique.values()), what)


def _one_kind(unique: tuple[SourceFile, ...], what: str) -> tuple[SourceFile, ...]:
    kinds = {f.kind == TOKENS for f in unique}
    if len(kinds) > 1:
        tok = next(f for f in unique if f.kind == TOKENS)
        text = next(f for f in unique if f.kind != TOKENS)
        raise ConfigError(
            f"{what} sources mix token files ({tok.name}) with text ({text.name}): give one kind or the other"
        )
    return unique


def _first_magic(parts: tuple[str, ...]) -> int:
    return next(i for i, p in enumerate(parts) if _GLOB_CHARS & set(p))


# ---- content digest ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Content:
    """A corpus's content digest, and for token files their largest token id (None for text)."""

    digest: str
    max_token: int | None


def content(files: Sequence[SourceFile]) -> Content:
    """The content digest of ``files`` (names and bytes), remembered by their paths, sizes and mtimes."""
    stat_key = json.dumps([(f.path, f.name, f.size, f.mtime_ns) for f in files])
    memo = data_cache() / "content" / f"{hashlib.sha256(stat_key.encode()).hexdigest()[:32]}.json"
    try:
        rec = json.loads(memo.read_text())
        return Content(rec["digest"], rec["max_token"])
    except (OSError, ValueError, KeyError):
        pass
    total = hashlib.sha256(b"archbench corpus v1")
    max_token: int | None = None
    for f in files:
        file_hash, top = _hash_file(f)
        total.update(f"{f.name}\0{file_hash}\n".encode())
        if top is not None:
            max_token = top if max_token is None else max(max_token, top)
    result = Content(total.hexdigest()[:16], max_token)
    with contextlib.suppress(OSError):  # a memo that cannot be written only costs a re-read next time
        write_json(memo, {"digest": result.digest, "max_token": result.max_token})
    return result


def _hash_file(f: SourceFile) -> tuple[str, int | None]:
    """sha256 of the file; for token files also the largest token (read in chunks: nothing stays mapped)."""
    h = hashlib.sha256()
    info = shards.inspect(f.path) if f.kind == TOKENS else None
    top: int | None = None
    left = 0
    with open(f.path, "rb") as fh:
        if info is not None:
            h.update(fh.read(info.offset))
            left = info.count * info.dtype.itemsize
        while chunk := fh.read(_CHUNK):  # a multiple of 4 bytes: token chunks stay aligned
            h.update(chunk)
            body = chunk[:left]
            left -= len(body)
            if body and info is not None:
                m = int(np.frombuffer(body, dtype=info.dtype).max())
                top = m if top is None else max(top, m)
    return h.hexdigest(), top


# ---- documents -------------------------------------------------------------------------------------


def utf8(raw: bytes) -> bytes:
    """``raw`` as valid UTF-8: each invalid sequence replaced by U+FFFD (the one documented rule)."""
    try:
        raw.decode("utf-8")
        return raw
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace").encode("utf-8")


def text_documents(f: SourceFile) -> Iterator[bytes]:
    """A plain text file: one document."""
    yield utf8(Path(f.path).read_bytes())


def jsonl_documents(f: SourceFile, column: str, start: int, stop: int) -> Iterator[bytes | None]:
    """The ``column`` of each JSON line that starts in bytes ``[start, stop)`` (None for a null value)."""
    with open(f.path, "rb") as fh:
        if start:
            fh.seek(start - 1)
            fh.readline()  # the line that holds byte start-1 belongs to the range before
        pos = fh.tell()
        while pos < stop:
            line = fh.readline()
            if not line:
                break
            offset, pos = pos, pos + len(line)
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise ConfigError(f"{f.name}: line {_line_no(f, offset)} is not JSON ({exc})") from None
            if not isinstance(record, dict) or column not in record:
                fields = ", ".join(record) if isinstance(record, dict) else type(record).__name__
                raise ConfigError(
                    f"{f.name}: line {_line_no(f, offset)} has no {column!r} field (it has: {fields}); "
                    "name the text field with text_column"
                )
            value = record[column]
            if value is None:
                yield None
            elif not isinstance(value, str):
                kind = type(value).__name__
                raise ConfigError(f"{f.name}: line {_line_no(f, offset)}: {column!r} is {kind}, not text")
            else:
                yield value.encode("utf-8", errors="replace")


def _line_no(f: SourceFile, offset: int) -> int:
    with open(f.path, "rb") as fh:
        return fh.read(offset).count(b"\n") + 1


def jsonl_ranges(f: SourceFile, target: int) -> list[tuple[int, int]]:
    """Byte ranges of about ``target`` bytes covering the file (lines are assigned by where they start)."""
    n = max(1, f.size // max(1, target))
    edges = [round(i * f.size / n) for i in range(n + 1)]
    return list(itertools.pairwise(edges))


def parquet_row_groups(f: SourceFile, column: str) -> int:
    """The row groups of a parquet file, after checking that ``column`` is a text column of it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(f.path)
        groups = pq.ParquetFile(f.path).metadata.num_row_groups
    except (pa.ArrowException, OSError) as exc:
        raise ConfigError(f"{f.name}: not a readable parquet file ({str(exc).splitlines()[0]})") from None
    if column not in schema.names:
        raise ConfigError(
            f"{f.name}: no column {column!r} (columns: {', '.join(schema.names)}); name it with text_column"
        )
    kind = schema.field(column).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise ConfigError(f"{f.name}: column {column!r} holds {kind}, not text")
    return groups


def parquet_documents(f: SourceFile, column: str, group: int) -> Iterator[bytes | None]:
    import pyarrow.parquet as pq

    values = pq.ParquetFile(f.path).read_row_group(group, columns=[column]).column(0).to_pylist()
    for v in values:
        yield None if v is None else v.encode("utf-8", errors="replace")
