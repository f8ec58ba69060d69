"""A study's directory next to the leaderboard, and the settings it refuses to change silently.

``<studies_root>/<study>/study.json`` records what defines the study (space, task, budget, objectives,
strategy and its options, seed, evaluator). Re-running with the same settings resumes it; running the
same study name with different settings is refused with the differences named, because mixing them
would make the front meaningless. ``n_trials`` and ``concurrency`` may change between runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archbench.errors import ConfigError
from archbench.search.strategy import atomic_write_bytes


def check_or_create(study_dir: Path, study: str, identity: dict[str, Any], allow_changes: bool = False) -> bool:
    """Write ``study.json`` for a new study, or check it; True when resuming an existing study.

    With ``allow_changes`` a changed setting is accepted: the new settings replace the old ones and
    the change (what, when) is appended to ``changes`` in ``study.json``.
    """
    study_dir.mkdir(parents=True, exist_ok=True)
    path = study_dir / "study.json"
    canonical = json.loads(json.dumps(identity, sort_keys=True, default=str))
    if not path.exists():
        atomic_write_bytes(path, json.dumps(canonical, indent=2, sort_keys=True).encode())
        return False
    try:
        saved = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"study {study}: cannot read {path} ({type(exc).__name__})") from None
    changes = saved.pop("changes", [])
    diffs = []
    for key in sorted(set(saved) | set(canonical)):
        if saved.get(key) != canonical.get(key):
            was, now = _short(saved.get(key)), _short(canonical.get(key))
            diffs.append(f"{key} was {was}, now {now}")
    if diffs and not allow_changes:
        raise ConfigError(
            f"study {study!r} exists with other settings ({'; '.join(diffs)}): rerun with the original "
            "settings to resume it, pick a new study.name=NAME, or accept the change with study.allow_changes=true"
        )
    if diffs:
        changes.append({"at": datetime.now(UTC).isoformat(timespec="seconds"), "changed": diffs})
        record = {**canonical, "changes": changes}
        atomic_write_bytes(path, json.dumps(record, indent=2, sort_keys=True).encode())
    return True


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


@contextlib.contextmanager
def driver_lock(study_dir: Path, study: str) -> Iterator[None]:
    """Hold the study's driver lock for the run: two drivers on one study would ask the same trial
    numbers twice. The OS drops the lock when the process dies, SIGKILL included."""
    study_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(study_dir / "driver.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            msg = f"study {study!r} is being run by another driver (pid {holder}); wait for it or stop it"
            raise ConfigError(msg) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
