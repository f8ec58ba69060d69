"""archbench's version, from one place: the installed package's metadata (``pyproject.toml``'s ``version``).

Rows, fingerprints and ``archbench --version`` all take it from :func:`archbench_version`. Torch-free and
import-free, so any part may use it.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import metadata as importlib_metadata


@lru_cache(maxsize=1)
def archbench_version() -> str:
    """The installed archbench's version (``unknown`` from a source tree that was never installed)."""
    try:
        return importlib_metadata.version("archbench")
    except importlib_metadata.PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
        return "unknown"
