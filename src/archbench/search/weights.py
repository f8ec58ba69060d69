"""The trained weights a search keeps (``search.keep_weights``): which rungs write them, how a row records
them, and the pruning to the final front at the end of every run.

* ``none`` (the default): nothing is written (no extra cost) and nothing is deleted.
* ``all``: every trial that trains writes its float weights, at every rung of a funnel.
* ``front``: the trials of the top rung (a single fidelity's only rung) write their weights while they run,
  because a trial cannot know whether it will be on the final front; lower rungs of a funnel write none. At
  the end of the run, and of every resumed run, the files of this study's rows that are not on the final
  front are deleted. A row off the front stays off it (later rows only add dominators), so nothing deleted
  is ever wanted again.

Where: ``<leaderboard>/../weights/<study>/``, beside the leaderboard as ``studies/`` is, one file per
architecture and budget (:func:`~archbench.interop.weights.save_trained`). A row records the path relative
to the leaderboard directory (``../weights/<study>/<file>``, :func:`~archbench.interop.kept.recorded_path`),
so a ``runs/`` tree moved or copied as a whole still exports. The worker that trains writes the file, so a
multi-node cluster needs the directory shared, as it needs the leaderboard.

Rows land durably before the front is known and leaderboard parts are never rewritten, so a pruned row keeps
its path; ``archbench export`` of such a row says in one line that its weights were not kept. A row served
from the cache points at the weights of the row it reuses when that file exists (null otherwise: the search
does not train it again to get weights; ``cache=false`` does). Pruning never deletes a file that a row of
another study points at (a row of it served from this study's cache).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from archbench.errors import ConfigError
from archbench.interop.kept import locate, recorded_path
from archbench.leaderboard import Leaderboard

KEEP_WEIGHTS = ("none", "front", "all")
WEIGHTS_DIR = "weights"  # beside the leaderboard directory, as studies/ is


def check_keep_weights(value: Any) -> None:
    """One line for a value ``search.keep_weights`` does not take."""
    if not isinstance(value, str) or value not in KEEP_WEIGHTS:
        raise ConfigError(f"search.keep_weights={value!r}: must be one of {', '.join(KEEP_WEIGHTS)}")


def weights_dir(leaderboard: str | Path, study: str) -> Path:
    """Where a study's kept weights go: ``<leaderboard>/../weights/<study>/``."""
    return Path(leaderboard).parent / WEIGHTS_DIR / study


def keeps_rung(keep: str, rung: int, top: int) -> bool:
    """Whether the trials of ``rung`` write their weights (``front``: the top rung only)."""
    return keep == "all" or (keep == "front" and rung == top)


def row_weights(kept: str | None, root: str | Path, cached: bool = False) -> str | None:
    """A row's ``weights`` as the leaderboard at ``root`` records it (:func:`recorded_path`). A row served
    from the cache (``cached``) keeps its original's path only while that file exists (it may never have
    been kept, or been pruned); a trial's own file is recorded as written."""
    if not kept:
        return None
    path = locate(kept, root)
    return None if cached and not path.is_file() else recorded_path(path, root)


@dataclass(frozen=True)
class KeptWeights:
    """What the closing report says about a study's kept weights."""

    where: Path
    keep: str
    files: int  # in ``where`` after pruning
    front_rows: int
    front_without: int  # front rows with no weights file (served from the cache of a row that kept none)
    deleted: int = 0

    def line(self) -> str:
        what = {"front": "the final front's rows", "all": "every row that trained"}.get(self.keep, "from earlier runs")
        out = f"weights: {self.files} files in {self.where} (search.keep_weights={self.keep}: {what}"
        out += f"; {self.deleted} off the front deleted)" if self.deleted else ")"
        if self.front_without and self.keep != "none":
            out += (
                f"; {self.front_without} of {self.front_rows} front rows have none "
                "(served from the cache of rows that kept none; cache=false trains them again)"
            )
        return out + "; export one: archbench export ARCH_ID --to hf DIR"


def settle_weights(
    keep: str, where: Path, lb: Leaderboard, study: str, front_rows: Sequence[Mapping[str, Any]]
) -> KeptWeights | None:
    """At the end of a run, delete the files in ``where`` (the study's) that nothing wants: with ``front``,
    those no row of the final front (``front_rows``: the top rung's) points at; with ``all``, those no row
    points at (left by a trial whose row never landed). A file a row of another study points at is kept;
    ``none`` deletes nothing. None when the study keeps none and never did."""
    if keep == "none" and not where.is_dir():
        return None
    root = Path(lb.root)
    deleted = 0
    if keep != "none" and where.is_dir():
        wanted = _pointed_at(lb, other_than=study if keep == "front" else None)
        wanted |= {locate(r["weights"], root).resolve() for r in front_rows if r.get("weights")}
        for path in where.glob("*.safetensors"):
            if path.resolve() not in wanted:
                path.unlink(missing_ok=True)
                deleted += 1
    files = len(list(where.glob("*.safetensors"))) if where.is_dir() else 0
    without = sum(not r.get("weights") or not locate(r["weights"], root).is_file() for r in front_rows)
    return KeptWeights(where, keep, files, len(front_rows), without, deleted)


def _pointed_at(lb: Leaderboard, other_than: str | None) -> set[Path]:
    """The weights files rows point at (``other_than``: the rows of every study but that one)."""
    if not lb.exists():
        return set()
    rows = lb.scan().filter(pl.col("weights").is_not_null())
    if other_than is not None:
        rows = rows.filter(pl.col("study").ne_missing(other_than))
    kept = rows.select("weights").unique().collect()["weights"].to_list()
    return {locate(k, lb.root).resolve() for k in kept}
