"""``check`` (verify every part, name the bad ones, optionally set them aside) and ``compact``."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from archbench.leaderboard.store import QUARANTINE_DIR, PartInfo, Store, deep_problem, fsync_dir

STALE_TMP_S = 3600.0  # a temporary part older than this belongs to a writer that died


@dataclass(frozen=True)
class CheckReport:
    """What ``check`` found. ``ok`` is true when every part is readable and of a known schema."""

    root: Path
    good: tuple[PartInfo, ...]
    bad: tuple[PartInfo, ...]
    superseded: tuple[str, ...]  # parts a compaction replaced but did not get to delete
    temp_files: tuple[Path, ...]  # left by appends that were interrupted (their rows were never visible)
    rows: int  # rows a reader sees

    @property
    def ok(self) -> bool:
        return not self.bad


@dataclass(frozen=True)
class FixReport:
    quarantined: tuple[str, ...]
    removed_superseded: tuple[str, ...]
    removed_temp: tuple[str, ...]


@dataclass(frozen=True)
class CompactReport:
    merged_parts: int  # small parts merged
    new_parts: tuple[str, ...]
    rows: int  # rows moved (equal before and after)
    parts_before: int
    parts_after: int


def check(store: Store, deep: bool = True) -> CheckReport:
    """Verify every part: its footer, schema version and (``deep``) every data page."""
    parts = store.all_parts()
    hidden = Store.superseded(parts)
    good, bad = [], []
    for p in parts:
        if p.ok and deep:
            problem = deep_problem(p)
            if problem is not None:
                p = PartInfo(p.name, p.path, p.size, p.rows, p.version, p.replaces, problem, p.schema_key)
        (good if p.ok else bad).append(p)
    visible = [p for p in good if p.name not in hidden]
    return CheckReport(
        root=store.root,
        good=tuple(visible),
        bad=tuple(bad),
        superseded=tuple(p.name for p in good if p.name in hidden),
        temp_files=tuple(store.temp_files()),
        rows=sum(p.rows or 0 for p in visible),
    )


def fix(store: Store, report: CheckReport, stale_tmp_s: float = STALE_TMP_S) -> FixReport:
    """Move bad parts to ``quarantine/``, delete superseded parts and stale temporary files.

    Nothing a reader sees is deleted: superseded parts are covered by their compacted part, and a
    temporary file is an append that never returned. Bad parts are moved, not deleted.
    """
    quarantined = []
    if report.bad:
        qdir = store.root / QUARANTINE_DIR
        qdir.mkdir(parents=True, exist_ok=True)
        for p in report.bad:
            if p.path.exists():
                shutil.move(str(p.path), qdir / p.name)
                quarantined.append(p.name)
    removed = []
    for name in report.superseded:
        path = store.parts_dir / name
        if path.exists():
            path.unlink()
            removed.append(name)
    now = time.time()
    temp = []
    for path in report.temp_files:
        try:
            if now - path.stat().st_mtime > stale_tmp_s:
                path.unlink()
                temp.append(path.name)
        except FileNotFoundError:
            continue
    return FixReport(tuple(quarantined), tuple(removed), tuple(temp))


def compact(store: Store, small_rows: int = 100_000, target_rows: int = 1_000_000) -> CompactReport:
    """Merge the parts with fewer than ``small_rows`` rows into parts of up to ``target_rows``.

    Holds ``ROOT/compact.lock`` meanwhile (appends go on). Each merged part is written atomically and
    read back before the parts it replaces are deleted; a crash at any point loses and doubles nothing.
    Bad parts are left where they are.
    """
    fd = store.acquire_lock()
    try:
        parts = store.visible_parts(warn=False)
        small = [p for p in parts if (p.rows or 0) < small_rows]
        if len(small) < 2:
            return CompactReport(0, (), 0, len(parts), len(parts))
        chunks: list[list[PartInfo]] = [[]]
        total = 0
        for p in small:
            if chunks[-1] and total + (p.rows or 0) > target_rows:
                chunks.append([])
                total = 0
            chunks[-1].append(p)
            total += p.rows or 0
        new_names, moved = [], 0
        for chunk in chunks:
            if len(chunk) < 2:
                continue
            expected = sum(p.rows or 0 for p in chunk)
            df = store.scan(chunk).collect()
            if df.height != expected:
                raise RuntimeError(f"compaction read {df.height} rows from parts holding {expected}; nothing changed")
            info = store.write(df, prefix="c", replaces=tuple(p.name for p in chunk))
            back = pl.scan_parquet(info.path).select(pl.len()).collect().item()
            if back != expected:  # pragma: no cover - would mean the filesystem lost our write
                info.path.unlink()
                raise RuntimeError(f"compacted part {info.name} reads back {back} rows, expected {expected}")
            for p in chunk:
                p.path.unlink(missing_ok=True)
            new_names.append(info.name)
            moved += expected
        fsync_dir(store.parts_dir)
        after = len(store.visible_parts(warn=False))
        return CompactReport(
            sum(1 for c in chunks if len(c) > 1 for _ in c), tuple(new_names), moved, len(parts), after
        )
    finally:
        store.release_lock(fd)
