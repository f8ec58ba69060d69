"""How a trial was run, apart from its architecture, task, budget and hardware: :class:`RunSettings`.

A row's numbers depend on the device it ran on (the hardware fingerprint, ``latency.hardware_fingerprint``)
and on how it was run: the whole training recipe (every :class:`~archbench.train_config.TrainConfig` field:
schedule, learning rate, warm-up, batch size, ...: whatever changes the trained weights), the deployment
its cost was measured in, how hard it was measured, and the archbench version. :class:`RunSettings` is that
record, kept apart from the fingerprint: each row carries it as the columns of :data:`COLUMNS`, and the
search's cache keys on them (:func:`archbench.search.cache.cache_key`), so a row is reused only for a trial
that would have been run the same way.

Torch-free.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from archbench.deploy import Deploy
from archbench.train_config import TrainConfig
from archbench.version import archbench_version

# The columns a row records its run settings in (all strings; null where the setting does not apply).
COLUMNS: dict[str, type] = {
    "archbench_version": str,
    "train_schedule": str,  # the schedule's label (TrainConfig.label), e.g. "wsd(warmup=1,decay=0.2)"
    "train_recipe": str,  # every TrainConfig field as canonical JSON (TrainConfig.recipe); null: not trained
    "deploy": str,  # the deployment measured, with its named workloads (Deploy.label); null: not measured
    "measure_mode": str,  # its modes joined by "+", e.g. "prefill+decode"
    "measure_effort": str,  # full | screen (a funnel's quick first look); null: not measured
}


@dataclass(frozen=True)
class RunSettings:
    """The training recipe, the deployment and the effort of a measurement, and the archbench version."""

    train: TrainConfig | None = None  # None: not trained (the sleep and lookup evaluators)
    deploy: Deploy | None = None  # None: not measured
    measure_effort: str | None = None  # "full" | "screen"; None: not measured
    archbench_version: str = field(default_factory=archbench_version)

    @classmethod
    def planned(
        cls, train: TrainConfig | None, deploy: Deploy | None, metrics: Iterable[str], measure: bool, screen: bool
    ) -> RunSettings:
        """What a trial of :func:`~archbench.evaluators.evaluate` runs with: ``train`` (None: the default
        recipe), and when it measures, ``deploy`` (None: the default) with the modes ``metrics`` need, at the
        quick effort with ``screen``. Both ``evaluate`` and the search's cache take them from here."""
        recipe = train or TrainConfig()
        if not measure:
            return cls(recipe)
        return cls(recipe, (deploy or Deploy()).for_metrics(metrics), "screen" if screen else "full")

    def measured(self, effort: str | None) -> RunSettings:
        """These settings as a trial whose measurement took ``effort`` records them (None: nothing was
        measured, so the row names no deployment)."""
        return replace(self, deploy=self.deploy if effort else None, measure_effort=effort)

    def columns(self) -> dict[str, Any]:
        """The row's :data:`COLUMNS`."""
        return {
            "archbench_version": self.archbench_version,
            "train_schedule": self.train.label() if self.train else None,
            "train_recipe": self.train.recipe() if self.train else None,
            "deploy": self.deploy.label() if self.deploy else None,
            "measure_mode": "+".join(self.deploy.modes) if self.deploy else None,
            "measure_effort": self.measure_effort if self.deploy else None,
        }
