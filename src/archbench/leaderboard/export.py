"""Turn a leaderboard row back into the runnable config of the foundation's export format.

The row's measured metrics, hardware and run identity go in a ``provenance:`` block that
``archbench.build`` and ``archbench.load_arch`` ignore.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from archbench.errors import ConfigError
from archbench.leaderboard.schema import ARTIFACTS, HARDWARE, IDENTITY, TIMES, arch_fields
from archbench.search_space.architecture import Architecture
from archbench.search_space.export import dump_config, save_config
from archbench.trial import METRICS

PROVENANCE_IDENTITY = (
    "arch_id",
    "study",
    "trial",
    "task",
    "budget",
    "rung",
    "seed",
    "status",
    "error",
    "feasible",
    "violation",
)


def resolve_arch_id(lf: pl.LazyFrame, prefix: str) -> str:
    """The one arch_id starting with ``prefix``; a clear error when none or several match."""
    prefix = prefix.strip().lower()
    if not prefix or not all(c in "0123456789abcdef" for c in prefix):
        raise ConfigError(f"arch id {prefix!r} is not hexadecimal (arch ids look like 1a2b3c4d5e6f)")
    ids = (
        lf.select(pl.col("arch_id").unique())
        .filter(pl.col("arch_id").str.starts_with(prefix))
        .collect()["arch_id"]
        .sort()
        .to_list()
    )
    if not ids:
        raise ConfigError(f"no architecture {prefix!r} in the leaderboard")
    if len(ids) > 1:
        shown = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
        raise ConfigError(f"arch id prefix {prefix!r} is ambiguous: it matches {len(ids)} ({shown}); give more digits")
    return ids[0]


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def provenance(row: Mapping[str, Any], measurements: int, leaderboard: str) -> dict[str, Any]:
    """The provenance block: identity, non-null metrics, why others are null, hardware and versions."""
    fields = set(arch_fields())
    known = set(IDENTITY) | fields | set(TIMES) | set(ARTIFACTS) | {"null_reasons", "cached"}
    metrics = {k: _plain(row[k]) for k in METRICS if row.get(k) is not None}
    hardware = {k: row[k] for k in HARDWARE if row.get(k) is not None}
    for k, v in row.items():
        if k in known or k in METRICS or k in HARDWARE or v is None:
            continue
        if isinstance(v, int | float) and not isinstance(v, bool):
            metrics[k] = _plain(v)
        else:
            hardware[k] = v
    try:
        reasons = json.loads(row.get("null_reasons") or "{}")
    except ValueError:
        reasons = {}
    out: dict[str, Any] = {k: row[k] for k in PROVENANCE_IDENTITY if row.get(k) not in (None, "")}
    out["metrics"] = metrics
    if reasons:
        out["null_reasons"] = reasons
    out["hardware"] = hardware
    out.update({k: row[k] for k in ARTIFACTS if row.get(k)})
    out["created_at"] = row.get("created_at")
    out["measurements_of_this_arch"] = measurements
    out["leaderboard"] = leaderboard
    return out


def arch_from_row(row: Mapping[str, Any]) -> Architecture:
    """The Architecture of a row (fields the row lacks, from an older layout, take their defaults)."""
    try:
        return Architecture.from_dict({k: row[k] for k in arch_fields() if row.get(k) is not None})
    except Exception as exc:
        raise ConfigError(f"row of arch {row.get('arch_id')} does not rebuild an architecture: {exc}") from None


def latest_row(rows: pl.DataFrame) -> dict[str, Any]:
    """The most recently created of ``rows``."""
    return rows.sort("created_at", descending=True, nulls_last=True).row(0, named=True)


def export_config(
    rows: pl.DataFrame, leaderboard: str, path: str | Path | None = None, row: Mapping[str, Any] | None = None
) -> tuple[str, Path | None]:
    """The YAML for the most recent of ``rows`` (all of one arch_id); written to ``path`` when given.

    ``row`` (one of the arch's rows, e.g. the one ``pick`` chose) is described instead of the latest;
    keys that are not leaderboard columns (``knee_distance``) are left out.
    """
    latest = {k: row.get(k) for k in rows.columns} if row is not None else latest_row(rows)
    arch = arch_from_row(latest)
    note = ""
    if arch.arch_id != latest["arch_id"]:
        note = f"note: the leaderboard's arch_id {latest['arch_id']} was computed by another hashing rule"
    prov = provenance(latest, rows.height, leaderboard)
    comment = f"exported from {leaderboard}, {latest.get('task')} on {latest.get('device_name') or 'unknown device'}"
    if note:
        comment += "\n" + note
    text = dump_config(arch, comment=comment, provenance=prov)
    written = save_config(arch, path, comment=comment, provenance=prov) if path is not None else None
    return text, written
