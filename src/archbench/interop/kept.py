"""Where a leaderboard row's kept weights are: the ``weights`` column's paths, resolved and recorded.

Apart from :mod:`archbench.interop.weights` because the search driver records paths without importing
torch. A relative path is relative to the leaderboard directory, so a tree of leaderboard and weights moved
or copied as a whole still finds its files.
"""

from __future__ import annotations

import os
from pathlib import Path


def locate(kept: str | Path, root: str | Path) -> Path:
    """The file a leaderboard row's ``weights`` names: an absolute path as it is; a relative one from the
    leaderboard directory ``root`` (how a search records it) when it is there, else from here."""
    path = Path(kept)
    if path.is_absolute():
        return path
    beside = Path(root) / path
    return beside if beside.exists() else path


def recorded_path(path: str | Path, root: str | Path) -> str:
    """How a row of the leaderboard at ``root`` records the file ``path``: relative to ``root`` when the
    file lies in the directory that holds the leaderboard (``../weights/<study>/<file>``), so that the tree
    moved as a whole still finds it; absolute otherwise."""
    path, base = Path(path).resolve(), Path(root).resolve()
    return os.path.relpath(path, base) if path.is_relative_to(base.parent) else str(path)
