"""The search's cache: an architecture already run the same way is not run again; its row is reused.

"The same way" is :func:`cache_key`, the one definition: the task, the data (``data_digest``: the corpus,
tokenizer and split, so two corpora under ``task=text`` never share a row), the budget (so a funnel's rungs
never stand in for one another), the architecture, the device (:data:`HARDWARE_KEY` of the hardware fingerprint:
a CPU latency taken with another thread count is another measurement), and the run settings
(:data:`SETTINGS_KEY` of :class:`~archbench.run_settings.RunSettings`: the whole training recipe, the
deployment measured, the archbench version). A row computes its key from its own columns, a trial from
its evaluator's fingerprint and settings, through the same function. A row without a recorded recipe
(written before ``train_recipe`` existed) has a null recipe, so it is never a hit for a trial that trains:
its learning rate, warm-up or batch size may have been another's.

Two more rules: a row that left one of the study's ``needed`` metrics uncomputed (a screening rung's
``*_quant`` quality) is no hit, nor is a quick look at cost (``measure_effort`` screen) for a trial that
measures in full (a full measurement serves a quick look).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from archbench.leaderboard import Leaderboard
from archbench.run_settings import RunSettings
from archbench.search.fidelity import null_reasons_of
from archbench.search_space.architecture import Architecture
from archbench.trial import NOT_VALIDATED

HARDWARE_KEY = ("device_name", "torch_threads")  # what identifies the device in the fingerprint
SETTINGS_KEY = ("train_recipe", "deploy", "archbench_version")  # RunSettings' columns that change the numbers
DATA_KEY = ("data_digest",)  # the data's identity (Task.digest): null on rows from before it was recorded

Key = tuple[Any, ...]


def cache_key(
    task: str,
    budget: str,
    arch_id: str,
    hardware: Mapping[str, Any],
    settings: Mapping[str, Any],
    data: Mapping[str, Any],
) -> Key:
    """The key two runs share exactly when one's row may stand in for the other: ``hardware`` is a
    fingerprint (or a row), ``settings`` the columns of a :class:`~archbench.run_settings.RunSettings` (or
    a row), ``data`` the data's columns (``{"data_digest": ...}``, or a row)."""
    return (
        task,
        budget,
        arch_id,
        *(hardware.get(k) for k in HARDWARE_KEY),
        *(settings.get(k) for k in SETTINGS_KEY),
        *(data.get(k) for k in DATA_KEY),
    )


def row_key(row: Mapping[str, Any]) -> Key:
    """A leaderboard row's key, from its own columns."""
    return cache_key(row["task"], row["budget"], row["arch_id"], row, row, row)


class Cache:
    """The ok rows of ``task`` at ``budgets`` run as ``settings`` on the device of ``hardware``, by key; a
    row added later (a trial of this search) wins over an earlier one. Disabled when ``enabled`` is False
    or the fingerprint names no device."""

    def __init__(
        self,
        lb: Leaderboard,
        task: str,
        budgets: Sequence[str],
        hardware: Mapping[str, Any],
        settings: RunSettings,
        enabled: bool,
        needed: Sequence[str] = (),
        data_digest: str | None = None,
    ) -> None:
        self.task = task
        self.hardware = dict(hardware)
        self.settings = settings.columns()
        self.data = {"data_digest": data_digest}
        self.needed = tuple(needed)
        self.enabled = enabled and hardware.get("device_name") is not None
        self.rows: dict[Key, dict[str, Any]] = {}  # the latest row of each key
        self.full: dict[Key, dict[str, Any]] = {}  # the latest not measured by a quick look
        if not self.enabled or not lb.exists():
            return
        df = lb.query(task=task, status="ok").collect()
        if not df.height or "budget" not in df.columns:
            return
        df = df.filter(df["budget"].is_in(list(budgets)))
        for row in df.sort("created_at").to_dicts():
            self.add(row)

    def key(self, arch_id: str, budget: str) -> Key:
        """The key of a trial of architecture ``arch_id`` at ``budget`` in this search."""
        return cache_key(self.task, budget, arch_id, self.hardware, self.settings, self.data)

    def get(self, arch: Architecture, budget: str, full: bool = True) -> dict[str, Any] | None:
        """The latest row of ``arch`` at ``budget``; with ``full``, the latest not measured by a quick look."""
        return (self.full if full else self.rows).get(self.key(arch.arch_id, budget)) if self.enabled else None

    def add(self, row: dict[str, Any]) -> None:
        """Keep ``row`` if it is ok, complete for the study and of this search's device and settings."""
        if not self.enabled or row.get("status") != "ok":
            return
        skipped = null_reasons_of(row)
        if any(row.get(k) is None and skipped.get(k) == NOT_VALIDATED for k in self.needed):
            return
        key = row_key(row)
        if key != self.key(row["arch_id"], row["budget"]):
            return
        self.rows[key] = row
        if row.get("measure_effort") != "screen":
            self.full[key] = row

    def values(self) -> list[dict[str, Any]]:
        """Every row kept (one per key), by architecture and budget."""
        return sorted(self.rows.values(), key=lambda r: (r["arch_id"], r["budget"]))
