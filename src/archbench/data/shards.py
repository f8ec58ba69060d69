"""Token files: the nanoGPT / llm.c / modded-nanogpt shard format, and plain ``.npy`` token arrays.

A shard is a header of 256 little-endian int32 (``[0]`` magic, ``[1]`` version, ``[2]`` token count, the
rest zero), then the tokens. Two layouts exist (llm.c's ``dev/data/data_common.py``)::

    magic 20240520, version 1: uint16 tokens (GPT-2 sized vocabularies, FineWeb's shards)
    magic 20240801, version 7: uint32 tokens (vocabularies above 65536, llm.c's Llama 3 shards)

:func:`write_shard` picks the smaller layout that holds the vocabulary, so what archbench prepares is read
by those projects' loaders as is. :func:`open_tokens` maps a shard or a 1-D ``.npy`` array of uint16 or
uint32 read-only into memory (nothing is loaded); a wrong magic, an unknown version, a body shorter or
longer than the header says, or an array of another shape or type is a :class:`ConfigError` naming the file.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archbench.errors import ConfigError

HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
# (magic, version) -> token dtype
LAYOUTS: dict[tuple[int, int], np.dtype] = {
    (20240520, 1): np.dtype("<u2"),
    (20240801, 7): np.dtype("<u4"),
}
TOKEN_SUFFIXES = (".bin", ".npy")  # files read as tokens; every other file of a source is text


def token_dtype(vocab_size: int) -> np.dtype:
    """The narrowest shard dtype that holds token ids below ``vocab_size``."""
    return np.dtype("<u2") if vocab_size <= 1 << 16 else np.dtype("<u4")


def header(count: int, dtype: np.dtype) -> bytes:
    """The 1024-byte header of a shard of ``count`` tokens of ``dtype``."""
    (magic, version) = next(k for k, v in LAYOUTS.items() if v == np.dtype(dtype))
    head = np.zeros(HEADER_INTS, dtype="<i4")
    head[:3] = (magic, version, count)
    return head.tobytes()


def write_shard(path: str | os.PathLike[str], tokens: np.ndarray, vocab_size: int) -> None:
    """Write ``tokens`` as one shard (not atomic by itself: callers write inside a staging directory)."""
    dtype = token_dtype(vocab_size)
    with open(path, "wb") as f:
        f.write(header(len(tokens), dtype))
        f.write(np.ascontiguousarray(tokens, dtype=dtype).tobytes())


@dataclass(frozen=True)
class ShardInfo:
    """Where a file's tokens are: their dtype, count and byte offset."""

    path: Path
    dtype: np.dtype
    count: int
    offset: int


def inspect(path: str | os.PathLike[str]) -> ShardInfo:
    """Check a ``.bin`` shard's header against its size, or a ``.npy`` array's header; nothing is mapped."""
    path = Path(path)
    if path.suffix == ".npy":
        return _inspect_npy(path)
    size = path.stat().st_size
    if size < HEADER_BYTES:
        raise ConfigError(f"shard {path}: {size} bytes, shorter than the 1024-byte header (truncated?)")
    with open(path, "rb") as f:
        head = np.frombuffer(f.read(HEADER_BYTES), dtype="<i4")
    magic, version, count = int(head[0]), int(head[1]), int(head[2])
    dtype = LAYOUTS.get((magic, version))
    if dtype is None:
        known = ", ".join(f"{m} v{v}" for m, v in LAYOUTS)
        raise ConfigError(f"shard {path}: magic {magic} version {version} is not a token shard (known: {known})")
    body = size - HEADER_BYTES
    if count < 0 or body != count * dtype.itemsize:
        what = "truncated" if body < count * dtype.itemsize else "trailing bytes"
        raise ConfigError(
            f"shard {path}: the header says {count} tokens ({count * dtype.itemsize} bytes) but the body holds "
            f"{body} bytes ({what})"
        )
    return ShardInfo(path, dtype, count, HEADER_BYTES)


def _inspect_npy(path: Path) -> ShardInfo:
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version not in readers:
                raise ValueError(f".npy format version {version}")
            shape, _, dtype = readers[version](f)
            offset = f.tell()
    except (ValueError, OSError) as exc:
        raise ConfigError(f"{path}: not a .npy array we can map ({str(exc).splitlines()[0]})") from None
    if len(shape) != 1 or dtype.kind != "u" or dtype.itemsize not in (2, 4):
        raise ConfigError(f"{path}: expected a 1-D array of uint16 or uint32 tokens, got {dtype} of shape {shape}")
    count = int(shape[0])
    if path.stat().st_size < offset + count * dtype.itemsize:
        raise ConfigError(f"{path}: the header says {count} tokens but the file is shorter (truncated)")
    return ShardInfo(path, dtype, count, offset)


def open_tokens(info: ShardInfo) -> np.ndarray:
    """The file's tokens as a read-only array backed by a memory map (pages are read when touched).

    The map is advised for random access: a training batch touches a few windows, and the kernel's
    read-ahead would otherwise pull in (and count as resident) far more than that.
    """
    if info.count == 0:
        return np.zeros(0, dtype=info.dtype)
    with open(info.path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if hasattr(mmap, "MADV_RANDOM"):
        mm.madvise(mmap.MADV_RANDOM)
    return np.frombuffer(mm, dtype=info.dtype, count=info.count, offset=info.offset)


class ShardWriter:
    """Appends tokens to ``<prefix>_000000.bin``, ``<prefix>_000001.bin``, ... of at most ``limit`` tokens."""

    def __init__(self, root: Path, prefix: str, dtype: np.dtype, limit: int) -> None:
        self.root, self.prefix, self.dtype, self.limit = root, prefix, dtype, limit
        self.shards: list[dict[str, Any]] = []
        self.f: Any = None
        self.count = 0

    def add(self, tokens: np.ndarray) -> None:
        while len(tokens):
            if self.f is None:
                name = f"{self.prefix}_{len(self.shards):06d}.bin"
                self.f = open(self.root / name, "wb")  # noqa: SIM115  (closed in _close)
                self.f.write(header(0, self.dtype))
                self.shards.append({"file": name, "tokens": 0})
                self.count = 0
            take = tokens[: self.limit - self.count]
            self.f.write(take.tobytes())
            self.count += len(take)
            tokens = tokens[len(take) :]
            if self.count == self.limit:
                self._close()

    def _close(self) -> None:
        if self.f is not None:
            self.f.seek(0)
            self.f.write(header(self.count, self.dtype))
            self.f.close()
            self.shards[-1]["tokens"] = self.count
            self.f = None

    def finish(self) -> list[dict[str, Any]]:
        self._close()
        return self.shards
