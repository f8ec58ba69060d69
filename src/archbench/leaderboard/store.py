"""The parquet dataset on disk: atomic appends, listing and validating parts, one LazyFrame over them.

Layout::

    ROOT/parts/p-<time_ns>-<host>-<pid>-<random>.parquet   one part per append, never changed again
    ROOT/parts/c-<time_ns>-<host>-<pid>-<random>.parquet   a compacted part (lists the parts it replaces)
    ROOT/parts/.tmp-*                                    a part being written (never read)
    ROOT/quarantine/                                     bad parts moved aside by ``check --fix``

Contract (safe for many processes on many machines sharing ROOT, e.g. over NFS):

- A part is written under a hidden temporary name in the same directory, flushed and fsync'ed, then
  renamed to a name unique to this host, process and call; the directory is fsync'ed before ``append``
  returns. A reader therefore sees a part whole or not at all, and concurrent writers never collide.
- Parts are immutable. Compaction writes a ``c-`` part whose metadata lists the parts it replaces;
  from the moment it is renamed into place readers ignore those parts, so deleting them afterwards
  (or a crash before that) never shows a row twice or loses one.
- A part that cannot be read, or whose schema version is unknown, is skipped by readers and named by
  :meth:`Store.check`; it is never deleted unless the user asks (``check --fix`` moves it aside).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import socket
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from archbench.errors import ArchbenchError
from archbench.leaderboard.schema import (
    SCHEMA_VERSION,
    VERSION_KEY,
    base_schema,
    conform,
    known_version,
    migrate,
    union_schema,
)

REPLACES_KEY = "archbench.replaces"
PARTS_DIR = "parts"
QUARANTINE_DIR = "quarantine"
LOCK_NAME = "compact.lock"
TMP_PREFIX = ".tmp-"


class LeaderboardWarning(UserWarning):
    """Something in the leaderboard directory was skipped (a bad part); run ``archbench leaderboard check``."""


class CompactionLocked(ArchbenchError):
    """Another compaction holds the lock."""


@dataclass(frozen=True)
class PartInfo:
    """One ``.parquet`` file under ``parts/``, as its footer describes it."""

    name: str
    path: Path
    size: int
    rows: int | None = None
    version: int | None = None
    replaces: tuple[str, ...] = ()
    problem: str | None = None  # why the part is bad; None when it is good
    schema_key: str = ""  # parts with equal keys can be scanned together

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def compacted(self) -> bool:
        return self.name.startswith("c-")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", socket.gethostname())[:40] or "host"


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def read_footer(path: Path) -> PartInfo:
    """Describe one part from its parquet footer (cheap: no data pages are read)."""
    import pyarrow.parquet as pq

    size = path.stat().st_size
    try:
        meta = pq.read_metadata(path)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return PartInfo(path.name, path, size, problem=f"unreadable parquet ({first})")
    kv = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in (meta.metadata or {}).items()}
    raw = kv.get(VERSION_KEY)
    if raw is None:
        return PartInfo(path.name, path, size, meta.num_rows, problem="no archbench schema version (not written here)")
    try:
        version = int(raw)
    except ValueError:
        return PartInfo(path.name, path, size, meta.num_rows, problem=f"schema version {raw!r} is not a number")
    if not known_version(version):
        newer = " (written by a newer archbench)" if version > SCHEMA_VERSION else ""
        return PartInfo(
            path.name,
            path,
            size,
            meta.num_rows,
            version,
            problem=f"unknown schema version {version}{newer}; this archbench reads 1..{SCHEMA_VERSION}",
        )
    replaces: tuple[str, ...] = ()
    if REPLACES_KEY in kv:
        try:
            replaces = tuple(json.loads(kv[REPLACES_KEY]))
        except (ValueError, TypeError):
            return PartInfo(path.name, path, size, meta.num_rows, version, problem="corrupt list of replaced parts")
    arrow = str(meta.schema.to_arrow_schema().remove_metadata())
    schema_key = f"v{version}:{hashlib.sha1(arrow.encode()).hexdigest()[:16]}"
    return PartInfo(path.name, path, size, meta.num_rows, version, replaces, None, schema_key)


def deep_problem(info: PartInfo) -> str | None:
    """Read every page of a part; return why it fails, or None."""
    try:
        df = pl.read_parquet(info.path, hive_partitioning=False)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"data pages unreadable ({first[:200]})"
    if info.rows is not None and df.height != info.rows:
        return f"footer says {info.rows} rows, data has {df.height}"
    return None


@dataclass
class Store:
    """The directory of parts. Thread-compatible; one instance caches footers of the immutable parts."""

    root: Path
    _cache: dict[tuple[str, int, int], PartInfo] = field(default_factory=dict, repr=False)
    # Parts whose footer is fine but whose data failed to read in this process: name -> problem.
    _damaged: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def parts_dir(self) -> Path:
        return self.root / PARTS_DIR

    # ---- writing --------------------------------------------------------------------------------
    def write(self, df: pl.DataFrame, prefix: str = "p", replaces: tuple[str, ...] = ()) -> PartInfo:
        """Write ``df`` as one new part, atomically and durably; return its description."""
        directory = self.parts_dir
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{prefix}-{time.time_ns():020d}-{_host()}-{os.getpid()}-{uuid.uuid4().hex[:12]}.parquet"
        tmp = directory / f"{TMP_PREFIX}{name}"
        meta = {VERSION_KEY: str(SCHEMA_VERSION)}
        if replaces:
            meta[REPLACES_KEY] = json.dumps(list(replaces))
        try:
            with open(tmp, "wb") as fh:
                df.write_parquet(fh, metadata=meta, statistics=True)
                fh.flush()
                os.fsync(fh.fileno())
                size = os.fstat(fh.fileno()).st_size  # not stat() after the rename: a compactor may merge it away
            os.rename(tmp, directory / name)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(directory)
        return PartInfo(name, directory / name, size, df.height, SCHEMA_VERSION, replaces)

    # ---- listing --------------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.parts_dir.is_dir()

    def all_parts(self) -> list[PartInfo]:
        """Every ``.parquet`` part (good and bad), sorted by name (that is, by write time)."""
        if not self.parts_dir.is_dir():
            return []
        out = []
        for entry in os.scandir(self.parts_dir):
            if entry.name.startswith(".") or not entry.name.endswith(".parquet") or not entry.is_file():
                continue
            try:
                st = entry.stat()
            except FileNotFoundError:  # removed by a compaction meanwhile
                continue
            key = (entry.name, st.st_size, st.st_mtime_ns)
            info = self._cache.get(key)
            if info is None:
                try:
                    info = read_footer(Path(entry.path))
                except FileNotFoundError:
                    continue
                self._cache[key] = info
            if info.ok and info.name in self._damaged:
                info = dataclasses.replace(info, problem=self._damaged[info.name])
            out.append(info)
        out.sort(key=lambda p: p.name)
        return out

    def temp_files(self) -> list[Path]:
        """Hidden files left by appends that have not finished (or were killed)."""
        if not self.parts_dir.is_dir():
            return []
        return sorted(p for p in self.parts_dir.iterdir() if p.name.startswith(TMP_PREFIX))

    @staticmethod
    def superseded(parts: list[PartInfo]) -> set[str]:
        """Names of the parts replaced by a good compacted part (readers ignore them)."""
        return {name for p in parts if p.ok for name in p.replaces}

    def visible_parts(self, warn: bool = True) -> list[PartInfo]:
        """The good parts a reader uses; bad ones are skipped with one warning."""
        parts = self.all_parts()
        hidden = self.superseded(parts)
        bad = [p for p in parts if not p.ok]
        if bad and warn:
            names = ", ".join(p.name for p in bad[:3]) + (" ..." if len(bad) > 3 else "")
            warnings.warn(
                f"skipped {len(bad)} bad part(s) in {self.parts_dir} ({names}); run `archbench leaderboard check`",
                LeaderboardWarning,
                stacklevel=3,
            )
        return [p for p in parts if p.ok and p.name not in hidden]

    # ---- reading --------------------------------------------------------------------------------
    def scan(self, parts: list[PartInfo] | None = None) -> pl.LazyFrame:
        """One LazyFrame over ``parts`` (default: every visible part), in the current schema."""
        parts = self.visible_parts() if parts is None else parts
        groups: dict[str, list[PartInfo]] = {}
        for p in parts:
            groups.setdefault(p.schema_key, []).append(p)
        frames = []
        for members in groups.values():
            lf = pl.scan_parquet([str(p.path) for p in members], hive_partitioning=False)
            frames.append(migrate(lf, members[0].version or SCHEMA_VERSION))
        if not frames:
            return pl.LazyFrame(schema=base_schema())
        target = union_schema([f.collect_schema() for f in frames])
        return pl.concat([conform(f, target) for f in frames], how="vertical")

    def find_damaged(self) -> list[PartInfo]:
        """Read every visible part's data; remember (and return) those that fail, so readers skip them."""
        found = []
        for p in self.visible_parts(warn=False):
            problem = deep_problem(p)
            if problem is not None:
                self._damaged[p.name] = problem
                found.append(dataclasses.replace(p, problem=problem))
        return found

    def lock_path(self) -> Path:
        return self.root / LOCK_NAME

    def acquire_lock(self) -> int:
        """Take the compaction lock (an exclusively created file); raise if another process holds it."""
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.lock_path(), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = self.lock_path().read_text().strip()
            except OSError:
                holder = "unknown"
            raise CompactionLocked(
                f"another compaction holds {self.lock_path()} ({holder}); remove that file if no compaction is running"
            ) from None
        os.write(
            fd, f"host={socket.gethostname()} pid={os.getpid()} since={time.strftime('%Y-%m-%dT%H:%M:%S')}".encode()
        )
        os.fsync(fd)
        return fd

    def release_lock(self, fd: int) -> None:
        os.close(fd)
        self.lock_path().unlink(missing_ok=True)
