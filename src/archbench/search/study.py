"""A study's directory next to the leaderboard, and the settings it refuses to change silently.

``<studies_root>/<study>/study.json`` records what defines the study (space and a hash of its contents,
fidelity, task, budget, objectives, constraints, strategy and its options, seed, evaluator). Re-running
with the same settings resumes it; running the same study name with different settings is refused with
the differences named, because mixing them would make the front meaningless. ``n_trials``,
``concurrency``, ``timeout`` and ``search.keep_weights`` (it changes no number) may change between runs.

``data_digest`` is the identity of the data the trials train on (``Task.digest``: a text corpus's content,
tokenizer and split; ``charlm``'s bytes). A resume whose data changed is refused like any other setting,
and the line names both digests and the task setting behind them (``task.data``), or says that the files
changed under the same settings. A ``study.json`` written before the digest was recorded has no
``data_digest``: it is "not recorded", the resume is accepted and the digest recorded from then on (the
rows of such a study carry their own digest, so its front still keeps data apart).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archbench.errors import ConfigError
from archbench.search.strategy import atomic_write_bytes


def space_hash(fields: Mapping[str, Any]) -> str:
    """A short content hash of a space's fields (``sha256:`` + 16 hex digits), the same before and after
    a JSON round trip."""
    canonical = json.dumps(json.loads(json.dumps(fields, default=str)), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def upgrade(saved: dict[str, Any]) -> dict[str, Any]:
    """A ``study.json`` written before ``space_hash`` and ``fidelity`` were recorded, with the values it
    implied (such a study ran at a single fidelity), so that resuming it is not refused."""
    out = dict(saved)
    out.setdefault("fidelity", {"mode": "single"})
    if "space_hash" not in out and isinstance(out.get("space"), dict):
        out["space_hash"] = space_hash(out["space"])
    return out


# Funnel settings archbench no longer has (recorded in study.json as fidelity.<key>), and why they went.
REMOVED = {
    "promotion": "search.promotion=strata was removed (it lost to the Pareto ranking in "
    "benchmarks/results/multi_fidelity_cpu_strata.json)",
    "capped": "search.capped was removed (it lost to ASHA's rule alone in "
    "benchmarks/results/multi_fidelity_cpu_480s_capped.json)",
}


def recorded(study_dir: Path, study: str) -> dict[str, Any] | None:
    """The settings ``study.json`` records (read through :func:`upgrade`), or None for a new study."""
    path = study_dir / "study.json"
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"study {study}: cannot read {path} ({type(exc).__name__})") from None
    return upgrade(saved)


def refuse_removed(saved: Mapping[str, Any], study: str) -> None:
    """One line for a study recorded with a funnel setting archbench no longer has (:data:`REMOVED`)."""
    fidelity = saved.get("fidelity") or {}
    for key, why in REMOVED.items():
        if key in fidelity:
            raise ConfigError(
                f"study {study!r} was recorded with fidelity.{key}={json.dumps(fidelity[key])}: {why}; "
                "continue it without that setting with study.allow_changes=true, or start a new study.name=NAME"
            )


def check(study_dir: Path, study: str, identity: dict[str, Any], allow_changes: bool = False) -> dict[str, Any] | None:
    """Refuse resuming a study whose settings changed (unless ``allow_changes``), writing nothing; the
    record :func:`check_or_create` would write (None: nothing to write, the study is resumed as it is)."""
    path = study_dir / "study.json"
    canonical = json.loads(json.dumps(identity, sort_keys=True, default=str))
    if not path.exists():
        return canonical
    try:
        saved = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"study {study}: cannot read {path} ({type(exc).__name__})") from None
    changes = saved.pop("changes", [])
    legacy = saved
    saved = upgrade(saved)
    if "data_digest" in canonical:  # not recorded (a study from before it was): accepted, recorded from now on
        saved.setdefault("data_digest", canonical["data_digest"])
    if not allow_changes:
        refuse_removed(saved, study)
    diffs = _diffs(saved, canonical)
    if diffs and not allow_changes:
        raise ConfigError(
            f"study {study!r} exists with other settings ({'; '.join(diffs)}): rerun with the original "
            "settings to resume it, pick a new study.name=NAME, or accept the change with study.allow_changes=true"
        )
    if diffs:
        changes.append({"at": datetime.now(UTC).isoformat(timespec="seconds"), "changed": diffs})
    if diffs or saved != legacy:
        return {**canonical, **({"changes": changes} if changes else {})}
    return None


def check_or_create(study_dir: Path, study: str, identity: dict[str, Any], allow_changes: bool = False) -> bool:
    """Write ``study.json`` for a new study, or check it (:func:`check`); True when resuming an existing study.

    With ``allow_changes`` a changed setting is accepted: the new settings replace the old ones and
    the change (what, when) is appended to ``changes`` in ``study.json``. A file of an older archbench
    is read through :func:`upgrade` (and rewritten with the keys it lacked).
    """
    path = study_dir / "study.json"
    resuming = path.exists()
    record = check(study_dir, study, identity, allow_changes)
    if record is not None:
        study_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(record, indent=2, sort_keys=True).encode())
    return resuming


def _diffs(saved: Mapping[str, Any], now: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``key was X, now Y`` for each differing setting; two settings that are both mappings are compared
    key by key (``fidelity.rungs was [1, 3, 9], now [1, 2, 4]``), so a long one still names what changed."""
    out = []
    for key in sorted(set(saved) | set(now)):
        a, b = saved.get(key, _UNSET), now.get(key, _UNSET)
        if a == b:
            continue
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out.extend(_diffs(a, b, f"{prefix}{key}."))
        elif not prefix and key == "data_digest":
            out.append(f"data_digest was {_short(a)}, now {_short(b)} ({_data_setting(saved, now)})")
        else:
            out.append(f"{prefix}{key} was {_short(a)}, now {_short(b)}")
    return out


_UNSET = object()


def _data_setting(saved: Mapping[str, Any], now: Mapping[str, Any]) -> str:
    """Which task setting a changed ``data_digest`` comes from: the settings that changed (``task.data
    changed``), or, when none did, the files they name (``same settings: the files behind task.data=corpus/
    changed``)."""
    was = (saved.get("evaluator_options") or {}).get("task_options") or {}
    is_ = (now.get("evaluator_options") or {}).get("task_options") or {}
    changed = [f"task.{k}" for k in sorted(set(was) | set(is_)) if was.get(k, _UNSET) != is_.get(k, _UNSET)]
    if changed:
        return f"{', '.join(changed)} changed"
    named = [f"task.{k}={_listed(is_[k])}" for k in _FILE_SETTINGS if is_.get(k)]
    where = " or ".join(named) or f"task={now.get('task')}'s default corpus"
    return f"same settings: the files behind {where} changed"


_FILE_SETTINGS = ("data", "val", "root", "tokenizer")  # task settings that name files whose content may change


def _listed(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _short(value: Any) -> str:
    if value is _UNSET:
        return "unset"
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
