"""Strategy state persisted as one cloudpickled file, rewritten atomically after every ask and tell."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cloudpickle

from archbench.errors import ConfigError
from archbench.search.strategy import atomic_write_bytes


class Checkpoint:
    """``load()`` the saved state (or None), ``save(state)`` it: a crash leaves old or new, never half."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Any | None:
        if not self.path.exists():
            return None
        try:
            return cloudpickle.loads(self.path.read_bytes())
        except Exception as exc:
            raise ConfigError(f"cannot read strategy checkpoint {self.path}: {type(exc).__name__}: {exc}") from None

    def save(self, state: Any) -> None:
        atomic_write_bytes(self.path, cloudpickle.dumps(state))
