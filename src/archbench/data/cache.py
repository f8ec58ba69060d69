"""Where prepared data lives, and how a directory appears there whole or not at all.

A directory is built under a hidden staging name beside its final one, then renamed into place
(:func:`publish`): a reader sees the finished directory or nothing, whatever happens to the writer
(SIGKILL included). A staging directory left by a writer that died is removed by the next writer on the
same host (:func:`clear_stale`); one that is still being written by a live process is left alone.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

STAGING_MARK = ".partial-"


def cache_home() -> Path:
    """``$ARCHBENCH_CACHE_DIR``, or ``~/.cache/archbench``: archbench's cache (charlm's bytes, prepared data)."""
    return Path(os.environ.get("ARCHBENCH_CACHE_DIR") or Path.home() / ".cache" / "archbench")


def data_cache() -> Path:
    """Prepared token data, one directory per data digest, and the memo of corpus content digests."""
    return cache_home() / "data"


def staging_dir(target: Path) -> Path:
    """A fresh hidden directory beside ``target`` to build it in (the host and pid name its writer)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}{STAGING_MARK}{socket.gethostname()}-{os.getpid()}-"
    return Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))


def clear_stale(target: Path) -> None:
    """Remove staging directories of ``target`` whose writer (a process on this host) is gone."""
    host = socket.gethostname()
    prefix = f".{target.name}{STAGING_MARK}{host}-"
    if not target.parent.is_dir():
        return
    for entry in target.parent.iterdir():
        if not entry.name.startswith(prefix):
            continue
        pid = entry.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def publish(staging: Path, target: Path) -> bool:
    """Rename the finished ``staging`` to ``target``; False (and ``staging`` removed) when another writer
    published ``target`` first: content-keyed directories of the same name hold the same data."""
    try:
        os.rename(staging, target)
    except OSError:
        if not target.exists():
            raise
        shutil.rmtree(staging, ignore_errors=True)
        return False
    return True


def write_json(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and a rename (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
