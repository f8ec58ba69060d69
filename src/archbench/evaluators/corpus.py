"""The byte corpus of ``charlm``: the Python standard library's own ``.py`` files on this machine.

Files are listed in sorted relative-path order (third-party ``site-packages`` and the test suites left
out) and split into train and validation *by file*, by a hash of the relative path, so the split does
not move when a file is added elsewhere. The bytes are cached in memory and under
``$ARCHBENCH_CACHE_DIR`` (default ``~/.cache/archbench``), keyed by the file list, sizes and
modification times; a cache that cannot be written is skipped, never an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import sysconfig
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from archbench.errors import ConfigError

SKIP_DIRS = frozenset({"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"})


@dataclass(frozen=True)
class Corpus:
    """Train and validation bytes (uint8 arrays) and the files each came from."""

    root: str
    train: np.ndarray
    val: np.ndarray
    train_files: tuple[str, ...]
    val_files: tuple[str, ...]
    digest: str  # identifies the file list, sizes and mtimes (where the cache keeps the bytes)
    content: str  # identifies what is read: the split's file names and bytes (the same on every machine)


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def list_files(root: Path) -> list[Path]:
    """The corpus files under ``root``, sorted by relative POSIX path (skipped directories are not walked)."""
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        files.extend(Path(dirpath) / f for f in filenames if f.endswith(".py"))
    return sorted((p for p in files if p.is_file()), key=lambda p: p.relative_to(root).as_posix())


def is_validation(rel_path: str, val_fraction: float) -> bool:
    """Whether a file belongs to the validation split (a stable hash of its relative path)."""
    h = int.from_bytes(hashlib.sha256(rel_path.encode()).digest()[:8], "big")
    return h / 2**64 < val_fraction


def cache_dir() -> Path:
    from archbench.data.cache import cache_home

    return cache_home()


def load_corpus(root: str | os.PathLike[str] | None = None, val_fraction: float = 0.1) -> Corpus:
    """The split corpus under ``root`` (default: this Python's standard library), cached."""
    root_path = Path(root) if root is not None else stdlib_root()
    if not root_path.is_dir():
        raise ConfigError(f"charlm corpus directory not found: {root_path}")
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction={val_fraction!r}: must be between 0 and 1 (exclusive)")
    files = list_files(root_path)
    rels = [p.relative_to(root_path).as_posix() for p in files]
    manifest = [(r, p.stat().st_size, p.stat().st_mtime_ns) for r, p in zip(rels, files, strict=True)]
    key = json.dumps({"v": 1, "root": str(root_path), "val_fraction": val_fraction, "files": manifest})
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return _load(str(root_path), val_fraction, digest, tuple(rels))


@lru_cache(maxsize=4)
def _load(root: str, val_fraction: float, digest: str, rels: tuple[str, ...]) -> Corpus:
    val_files = tuple(r for r in rels if is_validation(r, val_fraction))
    train_files = tuple(r for r in rels if not is_validation(r, val_fraction))
    if not val_files or not train_files:
        raise ConfigError(f"charlm corpus {root}: {len(rels)} files are too few for a train/validation split")
    path = cache_dir() / f"charlm-{digest}.npz"
    arrays = _read_cache(path)
    if arrays is None:
        arrays = {name: _concat(Path(root), group) for name, group in (("train", train_files), ("val", val_files))}
        _write_cache(path, arrays)
    content = hashlib.sha256(json.dumps([train_files, val_files]).encode())
    for name in ("train", "val"):
        content.update(arrays[name].tobytes())
    return Corpus(root, arrays["train"], arrays["val"], train_files, val_files, digest, content.hexdigest()[:16])


def _concat(root: Path, rels: tuple[str, ...]) -> np.ndarray:
    data = b"".join((root / r).read_bytes() for r in rels)
    return np.frombuffer(data, dtype=np.uint8).copy()


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path) as npz:
            return {"train": npz["train"], "val": npz["val"]}
    except (OSError, KeyError, ValueError):
        return None


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
            tmp_name = tmp.name
            np.savez(tmp, **arrays)
        os.replace(tmp_name, path)  # atomic: a concurrent reader sees the old file or the whole new one
    except OSError:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
